/* test_sweep.c: who the sweep finds gone (core/sweep.c), with real pids. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "process.h"
#include "store.h"
#include "sweep.h"

static char host[256];

static void
owner_init(struct store_owner *o, char *id, size_t len, const char *h, long pid)
{
	memset(o, 0, sizeof(*o));
	(void)snprintf(id, len, "%s:%ld", h, pid);
	o->id = id;
	o->proc_start = -1;
}

START_TEST(this_process_registered_is_alive)
{
	struct store_owner o;
	char id[300];

	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), host, (long)getpid());
	o.registered = true;
	ck_assert(process_start_time(getpid(), &o.proc_start));
	o.quiet = true;   /* whatever its heartbeat says: the pid is its own */
	ck_assert(!sweep_owner_dead(&o, host));
}
END_TEST

START_TEST(a_reused_pid_is_dead)
{
	struct store_owner o;
	char id[300];

	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), host, (long)getpid());
	o.registered = true;
	ck_assert(process_start_time(getpid(), &o.proc_start));
	o.proc_start--;   /* registered by an earlier process of this pid */
	o.beating = true;
	ck_assert(sweep_owner_dead(&o, host));
}
END_TEST

START_TEST(a_dead_pid_is_dead)
{
	struct store_owner o;
	char id[300], gw[310];
	pid_t pid = fork();
	int status;

	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), host, (long)pid);
	o.beating = true;   /* a stale row cannot save it */
	ck_assert(sweep_owner_dead(&o, host));
	(void)snprintf(gw, sizeof(gw), "gw:%s", id);   /* a gateway's id */
	o.id = gw;
	ck_assert(sweep_owner_dead(&o, host));
}
END_TEST

START_TEST(alive_unregistered_waits_for_silence)
{
	struct store_owner o;
	char id[300];

	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), host, (long)getpid());
	ck_assert(!sweep_owner_dead(&o, host));
	o.quiet = true;
	ck_assert(sweep_owner_dead(&o, host));
}
END_TEST

START_TEST(a_gateway_of_this_host_alive)
{
	struct store_owner o;
	char id[300], gw[310];

	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), host, (long)getpid());
	(void)snprintf(gw, sizeof(gw), "gw:%s", id);
	o.id = gw;
	o.registered = true;
	ck_assert(process_start_time(getpid(), &o.proc_start));
	o.quiet = true;
	ck_assert(!sweep_owner_dead(&o, host));
}
END_TEST

START_TEST(another_host_by_heartbeat)
{
	struct store_owner o;
	char id[300];

	process_host(host, sizeof(host));
	owner_init(&o, id, sizeof(id), "elsewhere.invalid", 1);
	o.registered = true;
	o.beating = true;
	o.quiet = true;
	ck_assert(!sweep_owner_dead(&o, host));
	o.beating = false;
	o.quiet = false;   /* a database just back heard nobody yet */
	ck_assert(!sweep_owner_dead(&o, host));
	o.quiet = true;
	ck_assert(sweep_owner_dead(&o, host));
}
END_TEST

/* host_id: the sweep's "this host" is the configured name, so two hosts
 * with one system host name (containers, namespaces) judge each other by
 * heartbeat, never by pid. */
START_TEST(host_id_is_this_host)
{
	struct store_owner o;
	char id[300], sysname[256];
	pid_t child = fork();

	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(child, NULL, 0), child);   /* a pid surely dead */
	process_host(sysname, sizeof(sysname));
	process_set_host("app-a");
	process_host(host, sizeof(host));
	ck_assert_str_eq(host, "app-a");
	owner_init(&o, id, sizeof(id), "app-a", (long)child);
	o.beating = true;
	ck_assert(sweep_owner_dead(&o, host));     /* ours: the pid says it */
	owner_init(&o, id, sizeof(id), sysname, (long)child);
	o.beating = true;
	ck_assert(!sweep_owner_dead(&o, host));    /* another host's: it beats */
	process_set_host("");
	process_host(host, sizeof(host));
	ck_assert_str_eq(host, sysname);
}
END_TEST

START_TEST(start_time_of_a_missing_pid)
{
	long long t;

	ck_assert(!process_start_time((pid_t)0x7ffffff0, &t));
	ck_assert(!process_alive((pid_t)0x7ffffff0));
	ck_assert(process_start_time(getpid(), &t));
	ck_assert_int_gt(t, 0);
}
END_TEST

static Suite *
sweep_suite(void)
{
	Suite *s = suite_create("sweep");
	TCase *t = tcase_create("owners");

	tcase_add_test(t, this_process_registered_is_alive);
	tcase_add_test(t, a_reused_pid_is_dead);
	tcase_add_test(t, a_dead_pid_is_dead);
	tcase_add_test(t, alive_unregistered_waits_for_silence);
	tcase_add_test(t, a_gateway_of_this_host_alive);
	tcase_add_test(t, another_host_by_heartbeat);
	tcase_add_test(t, host_id_is_this_host);
	tcase_add_test(t, start_time_of_a_missing_pid);
	suite_add_tcase(s, t);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(sweep_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
