/* test_openai_fast.c: unit tests of openai_fast.h, and of openai_chunk.h's
 * promise that the fast path and the strict (json-c) path agree.
 *
 *   test_openai_fast                                  the Check suite
 *   test_openai_fast --bench [strict|fast|both] [N]   default: both 1000000
 *
 * The benchmark prints ns per parse of a typical token chunk for each path.
 * For instruction counts, run one path under callgrind with N and with 0
 * and divide the difference by N:
 *   valgrind --tool=callgrind tests/unit/test_openai_fast --bench fast 100000 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "openai_chunk.h"
#include "openai_fast.h"

/* ---- helpers ------------------------------------------------------------ */

/* A string literal as (ptr, len). */
#define LIT(s) (s), (sizeof(s) - 1)

static struct openai_chunk_parser *strict_parser, *parser;

static void
setup(void)
{
	strict_parser = openai_chunk_parser_new();
	parser = openai_chunk_parser_new();
	ck_assert_ptr_nonnull(strict_parser);
	ck_assert_ptr_nonnull(parser);
}

static void
teardown(void)
{
	openai_chunk_parser_free(strict_parser);
	openai_chunk_parser_free(parser);
	strict_parser = parser = NULL;
}

/* Whether the scanner alone takes data (its own buffer, 4096 bytes like the
 * parser's). */
static bool
fast_takes(const char *data, size_t len)
{
	static char buf[4096];
	const char *content = NULL;
	size_t content_len = 0;

	return openai_fast_scan(data, len, buf, sizeof(buf), &content, &content_len);
}

/* Parses data both ways, asserts the same verdict and the same fields, and
 * leaves the result in *out (borrowing from parser). Returns the verdict. */
static bool
parse_both(const char *event, const char *data, size_t len, struct openai_chunk *out)
{
	struct openai_chunk s;
	bool ok_strict, ok;

	ok_strict = openai_chunk_parse_strict(strict_parser, event, data, len, &s);
	ok = openai_chunk_parse(parser, event, data, len, out);
	ck_assert_msg(ok == ok_strict, "verdicts differ on %.*s", (int)len, data);
	if (!ok)
		return false;
	ck_assert_msg((out->content == NULL) == (s.content == NULL), "content presence differs on %.*s",
	    (int)len, data);
	ck_assert_uint_eq(out->content_len, s.content_len);
	if (out->content != NULL) {
		ck_assert_mem_eq(out->content, s.content, s.content_len);
		ck_assert_int_eq(out->content[out->content_len], '\0');
	}
	ck_assert_str_eq(out->finish_reason, s.finish_reason);
	ck_assert_int_eq(out->prompt_tokens, s.prompt_tokens);
	ck_assert_int_eq(out->completion_tokens, s.completion_tokens);
	ck_assert_int_eq(out->done, s.done);
	ck_assert_int_eq(out->error, s.error);
	ck_assert_str_eq(out->error_message, s.error_message);
	return true;
}

/* Asserts the fast path takes data and both paths give content `want`
 * (NULL: no content). */
static void
assert_fast(const char *data, const char *want)
{
	struct openai_chunk c;

	ck_assert_msg(fast_takes(data, strlen(data)), "fast path declined %s", data);
	ck_assert_msg(parse_both("", data, strlen(data), &c), "rejected %s", data);
	if (want == NULL) {
		ck_assert_ptr_null(c.content);
	} else {
		ck_assert_ptr_nonnull(c.content);
		ck_assert_uint_eq(c.content_len, strlen(want));
		ck_assert_mem_eq(c.content, want, strlen(want));
	}
	ck_assert_str_eq(c.finish_reason, "");
	ck_assert_int_eq(c.prompt_tokens, -1);
	ck_assert(!c.error && !c.done);
}

/* Asserts the fast path declines data and the strict path's verdict is
 * `valid`, with the same fields through openai_chunk_parse(). */
static void
assert_declined(const char *event, const char *data, bool valid)
{
	struct openai_chunk c;

	if (strcmp(event, "error") != 0)
		ck_assert_msg(!fast_takes(data, strlen(data)), "fast path took %s", data);
	ck_assert_msg(parse_both(event, data, strlen(data), &c) == valid, "verdict on %s", data);
}

/* ---- what the fast path takes ------------------------------------------ */

START_TEST(fast_openai_shapes)
{
	assert_fast("{\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718123456,"
	    "\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_4f0b692a78\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":\"Hello\"},\"logprobs\":null,\"finish_reason\":null}]}", "Hello");
	/* The first delta: a role and empty content. */
	assert_fast("{\"id\":\"chatcmpl-A1\",\"object\":\"chat.completion.chunk\",\"created\":1718123456,"
	    "\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
	    "\"content\":\"\",\"refusal\":null},\"logprobs\":null,\"finish_reason\":null}]}", NULL);
	/* Role only, no content key. */
	assert_fast("{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}",
	    NULL);
	/* stream_options.include_usage: usage null on each token; obfuscation. */
	assert_fast("{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\","
	    "\"service_tier\":\"default\",\"system_fingerprint\":null,\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":\" world\"},\"logprobs\":null,\"finish_reason\":null}],"
	    "\"usage\":null,\"obfuscation\":\"Xy3k\"}", " world");
	/* Any key order. */
	assert_fast("{\"usage\":null,\"choices\":[{\"finish_reason\":null,\"delta\":{\"content\":\"a\","
	    "\"role\":\"assistant\"},\"index\":0}],\"model\":\"m\",\"id\":\"x\"}", "a");
	/* content null (a tool-call delta) and no finish_reason at all. */
	assert_fast("{\"choices\":[{\"index\":0,\"delta\":{\"content\":null,\"tool_calls\":[{\"index\":0,"
	    "\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}",
	    NULL);
}
END_TEST

START_TEST(fast_azure_and_local_servers)
{
	/* Azure: content filter results beside the delta, prompt_filter_results. */
	assert_fast("{\"choices\":[{\"content_filter_results\":{\"hate\":{\"filtered\":false,"
	    "\"severity\":\"safe\"},\"self_harm\":{\"filtered\":false,\"severity\":\"safe\"}},"
	    "\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null,\"index\":0,\"logprobs\":null}],"
	    "\"created\":1718123456,\"id\":\"chatcmpl-x\",\"model\":\"gpt-4o\",\"object\":"
	    "\"chat.completion.chunk\",\"system_fingerprint\":\"fp_x\"}", "Hi");
	/* vLLM: stop_reason, a float and negative numbers, exponents. */
	assert_fast("{\"id\":\"cmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1718123456,"
	    "\"model\":\"meta-llama/Llama-3-8B\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"!\"},"
	    "\"logprobs\":{\"content\":[{\"token\":\"!\",\"logprob\":-0.25,\"bytes\":[33],"
	    "\"top_logprobs\":[]}]},\"finish_reason\":null,\"stop_reason\":null}],\"x\":[1.5e-3,-0,0.0,2E+10,true,false]}",
	    "!");
	/* llama.cpp server: timings-free token chunk, whitespace around tokens. */
	assert_fast(" {\"choices\": [ {\"finish_reason\": null, \"index\": 0, \"delta\": {\"content\": "
	    "\"tok\"} } ], \"created\": 1718123456, \"id\": \"chatcmpl-q\", \"model\": \"gguf\", "
	    "\"object\": \"chat.completion.chunk\"}\r\n", "tok");
}
END_TEST

START_TEST(fast_unescapes_the_common_escapes)
{
	assert_fast("{\"choices\":[{\"delta\":{\"content\":\"say \\\"hi\\\"\"},\"finish_reason\":null}]}",
	    "say \"hi\"");
	assert_fast("{\"choices\":[{\"delta\":{\"content\":\"a\\nb\\r\\tc\"},\"finish_reason\":null}]}",
	    "a\nb\r\tc");
	assert_fast("{\"choices\":[{\"delta\":{\"content\":\"C:\\\\dir\\/x\\b\\f\"},\"finish_reason\":null}]}",
	    "C:\\dir/x\b\f");
	/* Raw UTF-8 passes through untouched (json-c does not validate it here). */
	assert_fast("{\"choices\":[{\"delta\":{\"content\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}}]}",
	    "caf\xc3\xa9 \xf0\x9f\x98\x80");
	/* Escaped keys inside a skipped value are fine. */
	assert_fast("{\"x\":{\"a\\\"b\":\"\\\\\"},\"choices\":[{\"delta\":{\"content\":\"\\\\\"}}]}",
	    "\\");
}
END_TEST

/* ---- what it leaves to json-c ------------------------------------------- */

START_TEST(declines_the_rare_but_valid)
{
	/* \u escapes, in content or in a key the scanner reads. */
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\ud83d\\ude00\"}}]}", true);
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\\u0000b\"}}]}", true);
	assert_declined("", "{\"\\u0063hoices\":[{\"delta\":{\"content\":\"x\"}}]}", true);
	/* Any escaped key in an object whose keys are read. */
	assert_declined("", "{\"a\\\"b\":1,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}", true);
	/* The finish chunk. */
	assert_declined("", "{\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,"
	    "\"finish_reason\":\"stop\"}],\"usage\":null}", true);
	/* The usage chunk after it, choices empty. */
	assert_declined("", "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,"
	    "\"completion_tokens\":12,\"total_tokens\":21}}", true);
	/* More than one choice, none, or no object. */
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\"}},{\"delta\":{\"content\":\"b\"}}]}",
	    true);
	assert_declined("", "{\"id\":\"x\"}", true);
	assert_declined("", "{}", true);
	assert_declined("", "[1]", false);
	/* Errors, in the data or as the event name. */
	assert_declined("", "{\"error\":{\"message\":\"overloaded\",\"type\":\"server_error\"}}", true);
	assert_declined("", "{\"error\":null,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("error", "{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("error", "{\"message\":\"bad\"}", true);
	/* Duplicates of a key that is read: json-c keeps the last. */
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}", true);
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\"},\"delta\":{}}]}", true);
	/* Types the strict path ignores. */
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":7}}]}", true);
	assert_declined("", "{\"choices\":[{\"delta\":null}]}", true);
	assert_declined("", "{\"choices\":null}", true);
	/* What json-c's lenient mode takes and JSON does not. */
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":'a'}}]}", true);
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\"},}]}", true);
	assert_declined("", "{\"n\":NaN,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("", "{\"n\":True,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("", "{\"choices\":[{\"delta\":{\"content\":\"a\tb\"}}]}", true);
	assert_declined("", "{\"n\":1.,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("", "{\"n\":01,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
	assert_declined("", "/*c*/{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}", true);
}
END_TEST

START_TEST(declines_the_malformed)
{
	static const char *bad[] = {
		"",
		"{",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}]",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}]}}",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}]} x",
		"{\"choices\":[{\"delta\":{\"content\":\"a\\x\"}}]}",
		"{\"choices\":[{\"delta\":{\"content\":\"a}}]}",
		"{\"choices\":[{\"delta\":{\"content\" \"a\"}}]}",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"n\":-}",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"n\":nul}",
		"{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"n\":truex}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_declined("", bad[i], false);
}
END_TEST

START_TEST(declines_depth_over_the_limit)
{
	char deep[256];
	int n = 0, open;

	/* "x" at depth 2; its innermost array then sits at OPENAI_FAST_MAX_DEPTH,
	 * and one more level is declined (json-c takes both). */
	for (int extra = 0; extra <= 1; extra++) {
		open = OPENAI_FAST_MAX_DEPTH - 1 + extra;
		n = snprintf(deep, sizeof(deep), "{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"x\":");
		for (int i = 0; i < open; i++)
			deep[n++] = '[';
		for (int i = 0; i < open; i++)
			deep[n++] = ']';
		deep[n++] = '}';
		deep[n] = '\0';
		ck_assert(n < (int)sizeof(deep));
		if (extra == 0)
			assert_fast(deep, "a");
		else
			assert_declined("", deep, true);
	}
}
END_TEST

START_TEST(declines_content_beyond_its_buffer)
{
	static char data[5000], text[4200];
	const char *content;
	size_t content_len, fit = 4095;
	char buf[4096];
	struct openai_chunk c;

	memset(text, 'z', sizeof(text) - 1);
	for (int more = 0; more <= 1; more++) {
		int n = snprintf(data, sizeof(data), "{\"choices\":[{\"delta\":{\"content\":\"%.*s\"}}]}",
		    (int)(fit + (size_t)more), text);

		ck_assert(n > 0 && (size_t)n < sizeof(data));
		ck_assert_int_eq(openai_fast_scan(data, (size_t)n, buf, sizeof(buf), &content, &content_len),
		    more == 0);
		ck_assert(parse_both("", data, (size_t)n, &c));
		ck_assert_uint_eq(c.content_len, fit + (size_t)more);
	}
}
END_TEST

/* ---- the parser's contract ------------------------------------------------ */

START_TEST(content_outlives_the_data_until_the_next_call)
{
	char data[128];
	struct openai_chunk c, d;

	(void)snprintf(data, sizeof(data), "{\"choices\":[{\"delta\":{\"content\":\"kept\"}}]}");
	ck_assert(openai_chunk_parse(parser, "", data, strlen(data), &c));
	memset(data, '#', sizeof(data));  /* the SSE reader reuses its line */
	ck_assert_uint_eq(c.content_len, 4);
	ck_assert_mem_eq(c.content, "kept", 5);
	/* A fast chunk after a strict one, and the other way round. */
	ck_assert(openai_chunk_parse(parser, "", LIT("{\"choices\":[{\"delta\":{\"content\":\"\\u0041\"}}]}"),
	    &d));
	ck_assert_mem_eq(d.content, "A", 2);
	ck_assert(openai_chunk_parse(parser, "", LIT("{\"choices\":[{\"delta\":{\"content\":\"B\"}}]}"), &d));
	ck_assert_mem_eq(d.content, "B", 2);
}
END_TEST

START_TEST(done_marker_and_error_event_unchanged)
{
	struct openai_chunk c;

	ck_assert(parse_both("", LIT("[DONE]"), &c));
	ck_assert(c.done);
	ck_assert(parse_both("error", LIT("not json"), &c));
	ck_assert(c.error);
	ck_assert_str_eq(c.error_message, "upstream error");
	ck_assert(parse_both("", LIT("{\"error\":{\"message\":\"quota\"}}"), &c));
	ck_assert(c.error);
	ck_assert_str_eq(c.error_message, "quota");
	ck_assert(parse_both("",
	    LIT("{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}"), &c));
	ck_assert_int_eq(c.prompt_tokens, 3);
	ck_assert_int_eq(c.completion_tokens, 4);
}
END_TEST

static Suite *
fast_suite(void)
{
	Suite *s = suite_create("openai_fast");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, fast_openai_shapes);
	tcase_add_test(tc, fast_azure_and_local_servers);
	tcase_add_test(tc, fast_unescapes_the_common_escapes);
	tcase_add_test(tc, declines_the_rare_but_valid);
	tcase_add_test(tc, declines_the_malformed);
	tcase_add_test(tc, declines_depth_over_the_limit);
	tcase_add_test(tc, declines_content_beyond_its_buffer);
	tcase_add_test(tc, content_outlives_the_data_until_the_next_call);
	tcase_add_test(tc, done_marker_and_error_event_unchanged);
	suite_add_tcase(s, tc);
	return s;
}

/* ---- the benchmark ------------------------------------------------------ */

/* An OpenAI gpt-4o-mini token as it arrives: 225 bytes. */
static const char bench_chunk[] =
    "{\"id\":\"chatcmpl-9xKqT3pZ8mWv2LhR5nYc\",\"object\":\"chat.completion.chunk\","
    "\"created\":1718123456,\"model\":\"gpt-4o-mini\",\"system_fingerprint\":\"fp_4f0b692a78\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" world\"},\"finish_reason\":null}]}";

typedef bool parse_fn(struct openai_chunk_parser *, const char *, const char *, size_t,
    struct openai_chunk *);

static double
bench_now_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
		perror("clock_gettime");
		exit(EXIT_FAILURE);
	}
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Parses the chunk n times and prints ns per parse; exits on a failed or
 * wrong parse. */
static void
bench_run(const char *name, parse_fn *parse, long n)
{
	struct openai_chunk_parser *p = openai_chunk_parser_new();
	struct openai_chunk c;
	double t0, t1;

	if (p == NULL) {
		fprintf(stderr, "out of memory\n");
		exit(EXIT_FAILURE);
	}
	t0 = bench_now_ns();
	for (long i = 0; i < n; i++) {
		if (!parse(p, "", bench_chunk, sizeof(bench_chunk) - 1, &c) || c.content_len != 6) {
			fprintf(stderr, "%s: the chunk did not parse\n", name);
			exit(EXIT_FAILURE);
		}
	}
	t1 = bench_now_ns();
	openai_chunk_parser_free(p);
	if (n > 0)
		printf("%-6s %ld parses of %zu bytes: %.1f ns/parse\n", name, n, sizeof(bench_chunk) - 1,
		    (t1 - t0) / (double)n);
}

/* Runs the benchmark as argv (after --bench) asks. */
static int
bench(int argc, char **argv)
{
	const char *which = argc > 0 ? argv[0] : "both";
	bool strict = strcmp(which, "strict") == 0 || strcmp(which, "both") == 0;
	bool fast = strcmp(which, "fast") == 0 || strcmp(which, "both") == 0;
	long n = 1000000;
	char *end = NULL;

	if (argc > 1)
		n = strtol(argv[1], &end, 10);
	if ((!strict && !fast) || argc > 2 || n < 0 || (end != NULL && (end == argv[1] || *end != '\0'))) {
		fprintf(stderr, "usage: test_openai_fast --bench [strict|fast|both] [N]\n");
		return EXIT_FAILURE;
	}
	if (strict)
		bench_run("strict", openai_chunk_parse_strict, n);
	if (fast)
		bench_run("fast", openai_chunk_parse, n);
	return EXIT_SUCCESS;
}

int
main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	if (argc > 1 && strcmp(argv[1], "--bench") == 0)
		return bench(argc - 2, argv + 2);
	sr = srunner_create(fast_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
