/* test_fcgi_conn.c: the FastCGI response the loop writes itself, read back
 * from the other end of a socket pair as nginx would: FCGI_STDOUT records
 * of the request's id carrying exactly the bytes written, an empty
 * FCGI_STDOUT, FCGI_END_REQUEST, then the close; frames cut between
 * events; a peer that left makes writes fail and still closes cleanly. */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "fcgi_conn.h"
#include "http.h"
#include "loop.h"
#include "loop_epoll.h"

static int pair[2];
static struct http_io io;
static bool closed;

static void
on_closed(void *ctx)
{
	(void)ctx;
	closed = true;
	loop_epoll_stop();
}

/* Reads the peer's end until EOF into raw, as nginx would, concurrently
 * with the writer (a frame waits until the previous one was read). */
static void *
read_all(void *arg)
{
	struct buf *raw = arg;
	char chunk[65536];
	ssize_t n;

	while ((n = read(pair[1], chunk, sizeof(chunk))) > 0)
		if (!buf_append(raw, chunk, (size_t)n))
			return NULL;
	return raw;
}

struct record {
	unsigned type, id;
	size_t   len;
	const unsigned char *content;
};

/* The next record at *off of raw; false at the end. */
static bool
next_record(const struct buf *raw, size_t *off, struct record *r)
{
	const unsigned char *h = (const unsigned char *)raw->data + *off;

	if (*off + 8 > raw->len)
		return false;
	ck_assert_uint_eq(h[0], 1);                     /* version */
	r->type = h[1];
	r->id = (unsigned)h[2] << 8 | h[3];
	r->len = (size_t)h[4] << 8 | h[5];
	ck_assert_uint_eq(h[6], 0);                     /* no padding */
	ck_assert_uint_le(*off + 8 + r->len, raw->len);
	r->content = h + 8;
	*off += 8 + r->len;
	return true;
}

/* The peer's reads return at once when nothing is queued. */
static bool
fcntl_nonblock_peer(void)
{
	int flags = fcntl(pair[1], F_GETFL);

	return flags >= 0 && fcntl(pair[1], F_SETFL, flags | O_NONBLOCK) == 0;
}

static void
adopt(uint16_t id)
{
	struct fcgi_conn *c;

	ck_assert(loop_epoll_init());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, pair), 0);
	closed = false;
	memset(&io, 0, sizeof(io));
	ck_assert_ptr_nonnull(c = fcgi_conn_new());
	ck_assert(fcgi_conn_adopt(c, pair[0], id, &io, on_closed, NULL));
}

START_TEST(records_carry_the_bytes_then_end_request_and_close)
{
	struct buf raw, body;
	struct record r;
	size_t off = 0;
	bool saw_empty = false, saw_end = false;
	char big[70000];

	pthread_t reader;

	adopt(0x1234);
	buf_init(&raw, 1 << 20);
	buf_init(&body, 1 << 20);
	ck_assert_int_eq(pthread_create(&reader, NULL, read_all, &raw), 0);
	memset(big, 'x', sizeof(big));
	ck_assert(io.write(io.ctx, "Status: 200 OK\r\n\r\n", 18) && io.flush(io.ctx));
	ck_assert(io.write(io.ctx, "data: one\n\n", 11) && io.flush(io.ctx));
	/* More than one record can hold (65,535 bytes). */
	ck_assert(io.write(io.ctx, big, sizeof(big)) && io.flush(io.ctx));
	io.finish(io.ctx);
	ck_assert(loop_epoll_run());
	ck_assert(closed);
	void *got = NULL;
	ck_assert_int_eq(pthread_join(reader, &got), 0);
	ck_assert_ptr_eq(got, &raw);
	while (next_record(&raw, &off, &r)) {
		ck_assert_uint_eq(r.id, 0x1234);
		ck_assert(!saw_end);
		if (r.type == 6 && r.len > 0) {
			ck_assert(!saw_empty);
			ck_assert(buf_append(&body, (const char *)r.content, r.len));
		} else if (r.type == 6)
			saw_empty = true;
		else {
			ck_assert_uint_eq(r.type, 3);           /* FCGI_END_REQUEST */
			ck_assert_uint_eq(r.len, 8);
			for (int i = 0; i < 8; i++)             /* appStatus 0, REQUEST_COMPLETE */
				ck_assert_uint_eq(r.content[i], 0);
			saw_end = true;
		}
	}
	ck_assert_uint_eq(off, raw.len);
	ck_assert(saw_empty && saw_end);
	ck_assert_uint_eq(body.len, 18 + 11 + sizeof(big));
	ck_assert_int_eq(memcmp(body.data, "Status: 200 OK\r\n\r\ndata: one\n\n", 29), 0);
	ck_assert_int_eq(memcmp(body.data + 29, big, sizeof(big)), 0);
	buf_free(&raw);
	buf_free(&body);
	close(pair[1]);
	loop_epoll_free();
}
END_TEST

/* Many events in one turn: each write(2) the peer gets ends between two
 * events, so a reader that splits every read on blank lines never sees
 * half an event. The peer reads only after everything was queued, so the
 * frames must have waited for it in turn. */
static struct loop_timer *reader_timer;
static struct buf reads_raw;
static size_t reads_count;
static bool reads_aligned;

/* One read of the peer: it must hold whole records whose text ends an
 * event (reads_aligned goes false otherwise); counted in reads_count. */
static void
check_read(const char *chunk, size_t n)
{
	size_t off = 0;
	struct record r;
	struct buf one;

	buf_init(&one, n);
	ck_assert(buf_append(&one, chunk, n));
	while (next_record(&one, &off, &r))
		if (r.type == 6 && r.len > 0 &&
		    !(r.len >= 2 && r.content[r.len - 2] == '\n' && r.content[r.len - 1] == '\n'))
			reads_aligned = false;
	if (off != one.len)
		reads_aligned = false;
	buf_free(&one);
	reads_count++;
}

static void
read_some(void *ctx)
{
	char chunk[65536];
	ssize_t n;

	(void)ctx;
	while ((n = read(pair[1], chunk, sizeof(chunk))) > 0) {
		check_read(chunk, (size_t)n);
		ck_assert(buf_append(&reads_raw, chunk, (size_t)n));
		if (closed)
			break;
		(void)usleep(1000);   /* let the writer queue its next frame */
	}
	if (!closed)
		loop_timer_set(reader_timer, 1);
}

START_TEST(frames_end_between_events)
{
	char ev[64];

	adopt(7);
	ck_assert(fcntl_nonblock_peer());
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(ev, sizeof(ev), "data: {\"token\":%d}\n\n", i);

		ck_assert(io.write(io.ctx, ev, (size_t)n) && io.flush(io.ctx));
	}
	io.finish(io.ctx);
	buf_init(&reads_raw, 1 << 20);
	reads_count = 0;
	reads_aligned = true;
	reader_timer = loop_timer_new(read_some, NULL);
	loop_timer_set(reader_timer, 5);
	ck_assert(loop_epoll_run());
	read_some(NULL);
	ck_assert(closed);
	ck_assert(reads_aligned);
	ck_assert_uint_gt(reads_count, 2);   /* ~40 KiB went in several frames */
	loop_timer_free(reader_timer);
	buf_free(&reads_raw);
	close(pair[1]);
	loop_epoll_free();
}
END_TEST

/* Paced events, one per loop turn, while the peer reads only now and then
 * (chatd skips asking the kernel how much nginx left unread while what it
 * wrote since nginx last caught up fits in a frame): still no read of the
 * peer takes more than one frame (8 KiB) or ends inside an event. */
static struct loop_timer *pace_timer, *slow_reader;
static int paced_left;
static size_t paced_read_max;

static void
pace_one(void *ctx)
{
	char ev[128];
	int n = snprintf(ev, sizeof(ev), "data: {\"token\":%d,\"pad\":\"%060d\"}\n\n", paced_left, 0);

	(void)ctx;
	ck_assert(io.write(io.ctx, ev, (size_t)n) && io.flush(io.ctx));
	if (--paced_left > 0)
		loop_timer_set(pace_timer, 0);
	else
		io.finish(io.ctx);
}

static void
read_slowly(void *ctx)
{
	char chunk[65536];
	ssize_t n;

	(void)ctx;
	while ((n = read(pair[1], chunk, sizeof(chunk))) > 0) {
		if ((size_t)n > paced_read_max)
			paced_read_max = (size_t)n;
		check_read(chunk, (size_t)n);
	}
	if (!closed)
		loop_timer_set(slow_reader, 20);
}

START_TEST(paced_events_never_queue_more_than_a_frame)
{
	adopt(9);
	ck_assert(fcntl_nonblock_peer());
	paced_left = 1000;   /* ~100 KiB, a hundred bytes a turn */
	paced_read_max = 0;
	reads_count = 0;
	reads_aligned = true;
	pace_timer = loop_timer_new(pace_one, NULL);
	slow_reader = loop_timer_new(read_slowly, NULL);
	loop_timer_set(pace_timer, 0);
	loop_timer_set(slow_reader, 20);
	ck_assert(loop_epoll_run());
	read_slowly(NULL);
	ck_assert(closed);
	ck_assert(reads_aligned);
	ck_assert_uint_gt(reads_count, 2);
	ck_assert_uint_le(paced_read_max, 8192);
	loop_timer_free(pace_timer);
	loop_timer_free(slow_reader);
	close(pair[1]);
	loop_epoll_free();
}
END_TEST

START_TEST(a_peer_that_left_fails_the_writes_and_the_conn_still_closes)
{
	adopt(3);
	close(pair[1]);
	ck_assert(io.write(io.ctx, "data: x\n\n", 9) && io.flush(io.ctx));  /* queued */
	/* The loop notices the close when it reads or writes. */
	struct loop_timer *end = loop_timer_new(on_closed, NULL);
	loop_timer_set(end, 50);
	ck_assert(loop_epoll_run());
	loop_timer_free(end);
	closed = false;
	ck_assert(!io.write(io.ctx, "data: y\n\n", 9) || !io.flush(io.ctx));
	io.finish(io.ctx);
	ck_assert(loop_epoll_run());
	ck_assert(closed);
	loop_epoll_free();
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("fcgi_conn");
	TCase *tc = tcase_create("records");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, records_carry_the_bytes_then_end_request_and_close);
	tcase_add_test(tc, frames_end_between_events);
	tcase_add_test(tc, paced_events_never_queue_more_than_a_frame);
	tcase_add_test(tc, a_peer_that_left_fails_the_writes_and_the_conn_still_closes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
