/* test_loop.c: unit tests of the FastCGI workers' event loop machinery:
 * loop_epoll (descriptors, timers, posts from other threads), workq (order,
 * batches, results back on the loop), follow (waiters by reply id) and
 * authcache (known users, revocation, off while deaf). */
#include <check.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "authcache.h"
#include "clock.h"
#include "follow.h"
#include "loop.h"
#include "loop_epoll.h"
#include "workq.h"

/* ---- timers ---- */

static char fired[16];
static size_t nfired;

static void
note_fire(void *ctx)
{
	if (nfired < sizeof(fired) - 1)
		fired[nfired++] = *(const char *)ctx;
}

static void
stop_loop(void *ctx)
{
	(void)ctx;
	loop_epoll_stop();
}

START_TEST(timers_fire_in_due_order_and_cancel_holds)
{
	static const char a = 'a', b = 'b', c = 'c', d = 'd';
	struct loop_timer *ta, *tb, *tc, *td, *end;

	ck_assert(loop_epoll_init());
	nfired = 0;
	memset(fired, 0, sizeof(fired));
	ta = loop_timer_new(note_fire, (void *)&a);
	tb = loop_timer_new(note_fire, (void *)&b);
	tc = loop_timer_new(note_fire, (void *)&c);
	td = loop_timer_new(note_fire, (void *)&d);
	end = loop_timer_new(stop_loop, NULL);
	/* Gaps wide enough for a slow run (valgrind): what is tested is the
	 * order, not the timing. */
	loop_timer_set(tc, 300);
	loop_timer_set(ta, 150);
	loop_timer_set(tb, 200);
	loop_timer_set(td, 250);
	loop_timer_cancel(td);
	ck_assert(!loop_timer_armed(td));
	loop_timer_set(tb, 20);         /* re-armed: moves ahead of a */
	loop_timer_set(end, 450);
	ck_assert(loop_epoll_run());
	ck_assert_str_eq(fired, "bac");
	loop_timer_free(ta);
	loop_timer_free(tb);
	loop_timer_free(tc);
	loop_timer_free(td);
	loop_timer_free(end);
	loop_epoll_free();
}
END_TEST

/* A timer that re-arms itself for 0 ms fires once per turn, so the
 * descriptors of the turn still run between its firings. */
static struct loop_timer *spinner;
static int spins, reads;
static int pair[2];

static void
spin(void *ctx)
{
	(void)ctx;
	if (++spins < 50)
		loop_timer_set(spinner, 0);
	else
		loop_epoll_stop();
}

static void
on_readable(void *ctx, int fd, bool readable, bool writable)
{
	char c;

	(void)ctx;
	(void)writable;
	if (readable && read(fd, &c, 1) == 1) {
		reads++;
		ck_assert_int_eq(write(pair[1], "x", 1), 1);  /* readable again next turn */
	}
}

START_TEST(zero_ms_timer_cannot_starve_descriptors)
{
	struct loop_fd *w;

	ck_assert(loop_epoll_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	ck_assert_int_eq(write(pair[1], "x", 1), 1);
	ck_assert_ptr_nonnull(w = loop_fd_add(pair[0], on_readable, NULL));
	spins = reads = 0;
	spinner = loop_timer_new(spin, NULL);
	loop_timer_set(spinner, 0);
	ck_assert(loop_epoll_run());
	ck_assert_int_eq(spins, 50);
	ck_assert_int_ge(reads, 40);  /* about one read per turn */
	loop_fd_remove(w);
	loop_timer_free(spinner);
	close(pair[0]);
	close(pair[1]);
	loop_epoll_free();
}
END_TEST

/* ---- descriptors ---- */

static int events_seen;
static struct loop_fd *self_watch;

static void
remove_self(void *ctx, int fd, bool readable, bool writable)
{
	(void)ctx;
	(void)fd;
	(void)readable;
	(void)writable;
	events_seen++;
	loop_fd_remove(self_watch);   /* inside its own callback */
	loop_fd_remove(self_watch);   /* twice is fine */
}

START_TEST(a_watch_removed_in_its_callback_is_never_called_again)
{
	struct loop_timer *end;

	ck_assert(loop_epoll_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	ck_assert_int_eq(write(pair[1], "xyz", 3), 3);   /* stays readable */
	events_seen = 0;
	ck_assert_ptr_nonnull(self_watch = loop_fd_add(pair[0], remove_self, NULL));
	loop_fd_want(self_watch, true, true);
	end = loop_timer_new(stop_loop, NULL);
	loop_timer_set(end, 50);
	ck_assert(loop_epoll_run());
	ck_assert_int_eq(events_seen, 1);
	loop_timer_free(end);
	close(pair[0]);
	close(pair[1]);
	loop_epoll_free();
}
END_TEST

static bool got_hangup;

static void
on_hangup(void *ctx, int fd, bool readable, bool writable)
{
	(void)ctx;
	(void)fd;
	if (readable) {
		char buf[8];

		/* EOF: the peer closed. */
		if (read(pair[0], buf, sizeof(buf)) == 0 || (readable && writable)) {
			got_hangup = true;
			loop_fd_remove(self_watch);
			loop_epoll_stop();
		}
	}
}

START_TEST(a_closed_peer_shows_as_readable)
{
	ck_assert(loop_epoll_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	got_hangup = false;
	ck_assert_ptr_nonnull(self_watch = loop_fd_add(pair[0], on_hangup, NULL));
	close(pair[1]);
	ck_assert(loop_epoll_run());
	ck_assert(got_hangup);
	close(pair[0]);
	loop_epoll_free();
}
END_TEST

/* ---- posts from other threads ---- */

#define POSTERS 4
#define POSTS_EACH 500

static int posted_sum, posted_n;
static pthread_t loop_thread;
static bool wrong_thread;

static void
count_post(void *arg)
{
	if (!pthread_equal(pthread_self(), loop_thread))
		wrong_thread = true;
	posted_sum += (int)(intptr_t)arg;
	if (++posted_n == POSTERS * POSTS_EACH)
		loop_epoll_stop();
}

static void *
poster(void *arg)
{
	(void)arg;
	for (int i = 1; i <= POSTS_EACH; i++)
		ck_assert(loop_epoll_post(count_post, (void *)(intptr_t)i));
	return NULL;
}

START_TEST(posts_from_threads_all_run_on_the_loop)
{
	pthread_t t[POSTERS];

	ck_assert(loop_epoll_init());
	loop_thread = pthread_self();
	posted_sum = posted_n = 0;
	wrong_thread = false;
	for (int i = 0; i < POSTERS; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, poster, NULL), 0);
	ck_assert(loop_epoll_run());
	for (int i = 0; i < POSTERS; i++)
		pthread_join(t[i], NULL);
	ck_assert(!wrong_thread);
	ck_assert_int_eq(posted_n, POSTERS * POSTS_EACH);
	ck_assert_int_eq(posted_sum, POSTERS * POSTS_EACH * (POSTS_EACH + 1) / 2);
	loop_epoll_free();
}
END_TEST

/* ---- workq ---- */

struct job {
	int  id;
	bool worked;
	bool done_on_loop;
	size_t batch;          /* how many the batch it ran in held */
};

static int jobs_done, jobs_expected;
static size_t max_batch;

static void
job_work(void *arg)
{
	((struct job *)arg)->worked = true;
}

static void
job_work_many(void **args, size_t n)
{
	/* Slow enough that the next submissions queue up behind it. */
	usleep(20000);
	for (size_t i = 0; i < n; i++) {
		((struct job *)args[i])->worked = true;
		((struct job *)args[i])->batch = n;
	}
	if (n > max_batch)
		max_batch = n;
}

static void
job_done(void *arg)
{
	struct job *j = arg;

	j->done_on_loop = pthread_equal(pthread_self(), loop_thread) && j->worked;
	if (++jobs_done == jobs_expected)
		loop_epoll_stop();
}

START_TEST(workq_runs_jobs_and_returns_them_to_the_loop_batched)
{
	struct job jobs[300];
	struct workq *q;

	ck_assert(loop_epoll_init());
	loop_thread = pthread_self();
	ck_assert_ptr_nonnull(q = workq_new(2, loop_epoll_post));
	memset(jobs, 0, sizeof(jobs));
	jobs_done = 0;
	max_batch = 0;
	jobs_expected = 300;
	for (int i = 0; i < 300; i++) {
		jobs[i].id = i;
		if (i % 3 == 0)
			ck_assert(workq_submit(q, job_work, job_done, &jobs[i]));
		else
			ck_assert(workq_submit_batched(q, job_work_many, job_done, &jobs[i]));
	}
	ck_assert(loop_epoll_run());
	for (int i = 0; i < 300; i++)
		ck_assert_msg(jobs[i].done_on_loop, "job %d", i);
	/* 200 batched jobs queued at once: taken many at a time, never more
	 * than the limit. */
	ck_assert_uint_gt(max_batch, 1);
	ck_assert_uint_le(max_batch, WORKQ_BATCH_MAX);
	workq_free(q);
	loop_epoll_free();
}
END_TEST

/* ---- follow ---- */

static int woken[3];

static void
wake(void *arg)
{
	woken[(intptr_t)arg]++;
}

START_TEST(followers_are_woken_by_their_reply_only)
{
	struct follow_waiter w[3];

	memset(w, 0, sizeof(w));
	memset(woken, 0, sizeof(woken));
	for (int i = 0; i < 3; i++) {
		strcpy(w[i].reply_id, i < 2 ? "reply-A" : "reply-B");
		w[i].wake = wake;
		w[i].arg = (void *)(intptr_t)i;
		follow_add(&w[i]);
	}
	follow_wake("reply-A");
	ck_assert_int_eq(woken[0], 1);
	ck_assert_int_eq(woken[1], 1);
	ck_assert_int_eq(woken[2], 0);
	follow_remove(&w[0]);
	follow_remove(&w[0]);   /* twice is fine */
	follow_wake("reply-A");
	follow_wake("reply-C");
	ck_assert_int_eq(woken[0], 1);
	ck_assert_int_eq(woken[1], 2);
	follow_remove(&w[1]);
	follow_remove(&w[2]);
	follow_wake("reply-B");
	ck_assert_int_eq(woken[2], 0);
}
END_TEST

/* ---- authcache ---- */

START_TEST(authcache_answers_only_while_deletions_are_heard)
{
	const char *u = "11111111-2222-4333-8444-555555555555";

	authcache_revoke_all(false);
	authcache_add(u);
	ck_assert(!authcache_known(u));         /* deaf: never cached */
	authcache_revoke_all(true);
	ck_assert(!authcache_known(u));
	authcache_add(u);
	ck_assert(authcache_known(u));
	ck_assert(!authcache_known("99999999-2222-4333-8444-555555555555"));
	authcache_revoke_all(true);             /* a user was deleted */
	ck_assert(!authcache_known(u));
	authcache_add(u);
	ck_assert(authcache_known(u));
	authcache_revoke_all(false);            /* the listener lost its connection */
	ck_assert(!authcache_known(u));
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("loop");
	TCase *tl = tcase_create("loop_epoll"), *tw = tcase_create("workq"),
	    *tf = tcase_create("follow"), *ta = tcase_create("authcache");
	SRunner *sr;
	int failed;

	tcase_add_test(tl, timers_fire_in_due_order_and_cancel_holds);
	tcase_add_test(tl, zero_ms_timer_cannot_starve_descriptors);
	tcase_add_test(tl, a_watch_removed_in_its_callback_is_never_called_again);
	tcase_add_test(tl, a_closed_peer_shows_as_readable);
	tcase_add_test(tl, posts_from_threads_all_run_on_the_loop);
	tcase_add_test(tw, workq_runs_jobs_and_returns_them_to_the_loop_batched);
	tcase_add_test(tf, followers_are_woken_by_their_reply_only);
	tcase_add_test(ta, authcache_answers_only_while_deletions_are_heard);
	suite_add_tcase(s, tl);
	suite_add_tcase(s, tw);
	suite_add_tcase(s, tf);
	suite_add_tcase(s, ta);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
