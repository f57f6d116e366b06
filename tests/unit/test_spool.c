/* test_spool.c: reply endings written at exit and stored by the sweep
 * (core/spool.c). store_reply_end is faked here: spool.c is a source of
 * this program, so the archive's store.o is never linked. */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spool.h"
#include "store.h"

#define REPLY_ID "0b7e3f1c-2d4a-4c1e-9f00-1234567890ab"

/* ---- the fake store: what store_reply_end was given ---- */

static struct {
	enum store_rc rc;
	int           calls;
	char          reply_id[64];
	char          text[256];
	size_t        len;
	char          chunk_ends[64];
	char          model[64];
	char          error[64];
	enum reply_status status;
	long          prompt_tokens, completion_tokens;
	bool          had_text;
} stored;

enum store_rc
store_reply_end(struct store *st, const struct reply_end *end)
{
	(void)st;
	stored.calls++;
	if (stored.rc != STORE_OK)
		return stored.rc;
	(void)snprintf(stored.reply_id, sizeof(stored.reply_id), "%s", end->reply_id);
	stored.had_text = end->text != NULL;
	stored.len = end->len < sizeof(stored.text) ? end->len : 0;
	if (end->text != NULL)
		memcpy(stored.text, end->text, stored.len);
	(void)snprintf(stored.chunk_ends, sizeof(stored.chunk_ends), "%s", end->chunk_ends != NULL ? end->chunk_ends : "");
	(void)snprintf(stored.model, sizeof(stored.model), "%s", end->model != NULL ? end->model : "");
	(void)snprintf(stored.error, sizeof(stored.error), "%s", end->error_code != NULL ? end->error_code : "");
	stored.status = end->status;
	stored.prompt_tokens = end->prompt_tokens;
	stored.completion_tokens = end->completion_tokens;
	return STORE_OK;
}

/* ---- a fresh spool directory per test ---- */

static char dir[64];

static void
setup(void)
{
	char base[] = "/tmp/test_spool.XXXXXX";

	ck_assert_ptr_nonnull(mkdtemp(base));
	/* A directory that does not exist yet: spool_put creates it. */
	(void)snprintf(dir, sizeof(dir), "%s/spool", base);
	memset(&stored, 0, sizeof(stored));
}

static void
teardown(void)
{
	char cmd[128];

	(void)snprintf(cmd, sizeof(cmd), "rm -rf '%.*s'", (int)(strrchr(dir, '/') - dir), dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* The names in dir, sorted, joined by spaces. */
static void
listing(char *out, size_t len)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort);
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		if (strcmp(names[i]->d_name, ".") != 0 && strcmp(names[i]->d_name, "..") != 0)
			used += (size_t)snprintf(out + used, len - used, "%s%s", used ? " " : "", names[i]->d_name);
		free(names[i]);
	}
	free(names);
}

static void
write_file(const char *name, const char *content)
{
	char path[128];
	FILE *f;

	ck_assert_int_eq(mkdir(dir, 0700), 0);
	(void)snprintf(path, sizeof(path), "%s/%s", dir, name);
	ck_assert_ptr_nonnull(f = fopen(path, "w"));
	ck_assert_int_eq(fputs(content, f) >= 0, 1);
	ck_assert_int_eq(fclose(f), 0);
}

static const char TEXT[] = "tail with \"quotes\", a \\ backslash,\nnew lines and \xc3\xa9t\xc3\xa9";

static struct reply_end
an_ending(void)
{
	return (struct reply_end){
		.reply_id = REPLY_ID, .text = TEXT, .len = sizeof(TEXT) - 1, .chunk_ends = "{12,40}",
		.status = REPLY_COMPLETE, .model = "gpt-4o-mini", .error_code = NULL,
		.prompt_tokens = 12, .completion_tokens = 34,
	};
}

START_TEST(an_ending_comes_back_whole_and_its_file_goes)
{
	struct reply_end end = an_ending();
	char names[256];

	ck_assert(spool_put(dir, &end));
	listing(names, sizeof(names));
	ck_assert_str_eq(names, REPLY_ID ".json");
	ck_assert_int_eq(spool_apply(dir, NULL), 1);
	ck_assert_int_eq(stored.calls, 1);
	ck_assert_str_eq(stored.reply_id, REPLY_ID);
	ck_assert(stored.had_text);
	ck_assert_uint_eq(stored.len, sizeof(TEXT) - 1);
	ck_assert_mem_eq(stored.text, TEXT, sizeof(TEXT) - 1);
	ck_assert_str_eq(stored.chunk_ends, "{12,40}");
	ck_assert_int_eq(stored.status, REPLY_COMPLETE);
	ck_assert_str_eq(stored.model, "gpt-4o-mini");
	ck_assert_str_eq(stored.error, "");
	ck_assert_int_eq(stored.prompt_tokens, 12);
	ck_assert_int_eq(stored.completion_tokens, 34);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, "");
	ck_assert_int_eq(spool_apply(dir, NULL), 0);   /* nothing left */
	ck_assert_int_eq(stored.calls, 1);
}
END_TEST

START_TEST(an_ending_without_text_keeps_its_error)
{
	struct reply_end end = an_ending();

	end.text = NULL;
	end.len = 0;
	end.chunk_ends = NULL;
	end.status = REPLY_ERROR;
	end.error_code = "upstream_error";
	end.prompt_tokens = end.completion_tokens = -1;
	ck_assert(spool_put(dir, &end));
	ck_assert_int_eq(spool_apply(dir, NULL), 1);
	ck_assert(!stored.had_text);
	ck_assert_int_eq(stored.status, REPLY_ERROR);
	ck_assert_str_eq(stored.error, "upstream_error");
	ck_assert_int_eq(stored.prompt_tokens, -1);
}
END_TEST

START_TEST(a_database_still_down_keeps_the_file)
{
	struct reply_end end = an_ending();
	char names[256];

	ck_assert(spool_put(dir, &end));
	stored.rc = STORE_UNAVAILABLE;
	ck_assert_int_eq(spool_apply(dir, NULL), -1);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, REPLY_ID ".json");
	stored.rc = STORE_OK;
	ck_assert_int_eq(spool_apply(dir, NULL), 1);
	ck_assert_int_eq(stored.calls, 2);
}
END_TEST

START_TEST(an_ending_the_database_refuses_is_set_aside_and_holds_up_nothing)
{
	struct reply_end end = an_ending();
	char names[256];

	ck_assert(spool_put(dir, &end));
	stored.rc = STORE_ERROR;   /* maybe transient: kept, the sweep goes on */
	ck_assert_int_eq(spool_apply(dir, NULL), 0);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, REPLY_ID ".json");
	stored.rc = STORE_INVALID;   /* refused for good: set aside */
	ck_assert_int_eq(spool_apply(dir, NULL), 0);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, REPLY_ID ".json.bad");
	ck_assert_int_eq(stored.calls, 2);
}
END_TEST

START_TEST(a_file_that_is_no_ending_is_set_aside)
{
	char names[256];

	write_file("junk.json", "{\"reply_id\": \"" REPLY_ID "\", \"status\": \"strea");
	ck_assert_int_eq(spool_apply(dir, NULL), 0);
	ck_assert_int_eq(stored.calls, 0);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, "junk.json.bad");
	ck_assert_int_eq(spool_apply(dir, NULL), 0);   /* not tried again */
}
END_TEST

START_TEST(a_streaming_status_or_a_path_in_the_id_is_refused)
{
	char names[256];

	write_file("a.json", "{\"reply_id\": \"" REPLY_ID "\", \"status\": \"streaming\"}");
	ck_assert_int_eq(spool_apply(dir, NULL), 0);
	ck_assert_int_eq(stored.calls, 0);
	listing(names, sizeof(names));
	ck_assert_str_eq(names, "a.json.bad");

	struct reply_end end = an_ending();

	end.reply_id = "../../etc/passwd";
	ck_assert(!spool_put(dir, &end));
	listing(names, sizeof(names));
	ck_assert_str_eq(names, "a.json.bad");
}
END_TEST

START_TEST(no_directory_is_nothing_to_do)
{
	struct reply_end end = an_ending();

	ck_assert_int_eq(spool_apply(dir, NULL), 0);
	ck_assert_int_eq(spool_apply("", NULL), 0);
	ck_assert(!spool_put("", &end));
	ck_assert_int_eq(stored.calls, 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("spool");
	TCase *tc = tcase_create("spool");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, an_ending_comes_back_whole_and_its_file_goes);
	tcase_add_test(tc, an_ending_without_text_keeps_its_error);
	tcase_add_test(tc, a_database_still_down_keeps_the_file);
	tcase_add_test(tc, an_ending_the_database_refuses_is_set_aside_and_holds_up_nothing);
	tcase_add_test(tc, a_file_that_is_no_ending_is_set_aside);
	tcase_add_test(tc, a_streaming_status_or_a_path_in_the_id_is_refused);
	tcase_add_test(tc, no_directory_is_nothing_to_do);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
