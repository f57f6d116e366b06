/* test_metrics.c: unit tests of metrics.h's Prometheus rendering in both
 * scopes: chatd's pool (unlabelled, with the pool and route families) and
 * a gateway (every series labelled frontend="gateway", no pool). */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "metrics.h"

static struct buf page;

static void
setup(void)
{
	buf_init(&page, 1 << 20);
}

static void
teardown(void)
{
	buf_free(&page);
	metrics_free();
}

/* Renders into page (buf keeps it NUL-terminated). */
static const char *
render(void)
{
	buf_free(&page);
	ck_assert(metrics_render_prometheus(&page));
	ck_assert_ptr_nonnull(page.data);
	return page.data;
}

/* Whether every sample line (not a # comment) carries frontend="gateway". */
static bool
every_sample_labelled(const char *t)
{
	static const char label[] = "{frontend=\"gateway\"";

	for (const char *line = t; *line != '\0';) {
		const char *nl = strchr(line, '\n');
		size_t len = nl != NULL ? (size_t)(nl - line) : strlen(line);
		if (line[0] != '#' && len > 0 &&
		    (memmem(line, len, label, sizeof(label) - 1) == NULL))
			return false;
		line += len + (nl != NULL);
	}
	return true;
}

static void
record_two_streams(void)
{
	metrics_stream_started();
	metrics_stream_started();
	metrics_stream_ended(STREAM_END_COMPLETED, 0.3, 0.02);
	metrics_stream_ended(STREAM_END_ERROR, 3.0, -1);
	metrics_upstream_error(UPSTREAM_DROPPED);
	metrics_tokens(5, 7);
}

START_TEST(gateway_series_carry_the_frontend_label)
{
	const char *t;

	ck_assert(metrics_init(METRICS_SCOPE_GATEWAY));
	record_two_streams();
	t = render();
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_started_total{frontend=\"gateway\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_completed_total{frontend=\"gateway\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_error_total{frontend=\"gateway\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t,
	    "\nstream_chat_duration_seconds_bucket{frontend=\"gateway\",le=\"0.5\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t,
	    "\nstream_chat_duration_seconds_bucket{frontend=\"gateway\",le=\"+Inf\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_duration_seconds_count{frontend=\"gateway\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_ttfb_seconds_count{frontend=\"gateway\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_ttfb_seconds_sum{frontend=\"gateway\"} 0.020000\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nchat_tokens_total{frontend=\"gateway\",direction=\"in\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nchat_tokens_total{frontend=\"gateway\",direction=\"out\"} 7\n"));
	ck_assert_ptr_nonnull(strstr(t,
	    "\nchat_upstream_errors_total{frontend=\"gateway\",kind=\"upstream_dropped\"} 1\n"));
	/* The pool and the HTTP routes are chatd's. */
	ck_assert_ptr_null(strstr(t, "chat_pool_"));
	ck_assert_ptr_null(strstr(t, "chat_http_requests_total"));
	ck_assert(every_sample_labelled(t));
}
END_TEST

START_TEST(pool_series_are_unlabelled_and_include_the_pool)
{
	const char *t;

	ck_assert(metrics_init(METRICS_SCOPE_POOL));
	record_two_streams();
	t = render();
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_started_total 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_duration_seconds_bucket{le=\"0.5\"} 1\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nstream_chat_duration_seconds_count 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nchat_tokens_total{direction=\"in\"} 5\n"));
	ck_assert_ptr_nonnull(strstr(t, "\nchat_pool_workers 0\n"));
	ck_assert_ptr_nonnull(strstr(t, "# TYPE chat_http_requests_total counter\n"));
	ck_assert_ptr_null(strstr(t, "frontend="));
}
END_TEST

START_TEST(without_a_segment_updates_are_no_ops)
{
	metrics_stream_started();   /* before init: nothing to count in */
	ck_assert_str_eq(render(), "# metrics unavailable\n");
	ck_assert(metrics_init(METRICS_SCOPE_GATEWAY));
	metrics_free();
	metrics_free();             /* twice: harmless */
	metrics_stream_started();
	ck_assert_str_eq(render(), "# metrics unavailable\n");
}
END_TEST

static Suite *
metrics_suite(void)
{
	Suite *s = suite_create("metrics");
	TCase *tc = tcase_create("render");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, gateway_series_carry_the_frontend_label);
	tcase_add_test(tc, pool_series_are_unlabelled_and_include_the_pool);
	tcase_add_test(tc, without_a_segment_updates_are_no_ops);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(metrics_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
