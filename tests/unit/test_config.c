/* test_config.c: unit tests of config.h (defaults, file, environment, errors,
 * secrets) and the documentation check: every setting is in chatd.conf (and
 * in the README's configuration section once it has one). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#ifndef SRCDIR
#define SRCDIR "."
#endif

/* ---- fixture: a clean environment and temp files ----------------------- */

#define MAX_TEMPS 8
static char *temps[MAX_TEMPS];
static size_t ntemps;
static struct config cfg;
static char err[1024];

static void
unset_config_env(void)
{
	const char *name, *env, *defval, *help;

	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++)
		unsetenv(env);
}

static void
setup(void)
{
	unset_config_env();
	memset(&cfg, 0, sizeof(cfg));
	err[0] = '\0';
	ntemps = 0;
}

static void
teardown(void)
{
	for (size_t i = 0; i < ntemps; i++) {
		unlink(temps[i]);
		free(temps[i]);
		temps[i] = NULL;
	}
	ntemps = 0;
	unset_config_env();
}

/* Writes text to a new temp file; returns its path (freed by teardown). */
static const char *
temp_file(const char *text)
{
	char *path = strdup("/tmp/test_config_XXXXXX");
	int fd;
	size_t n = strlen(text);

	ck_assert_ptr_nonnull(path);
	ck_assert_uint_lt(ntemps, MAX_TEMPS);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, text, n), (ssize_t)n);
	close(fd);
	temps[ntemps++] = path;
	return path;
}

/* Loads text as a config file and expects success. */
static void
load_ok(const char *text)
{
	const char *path = temp_file(text);

	ck_assert_msg(config_load(&cfg, path, err, sizeof(err)), "load failed: %s", err);
}

/* Loads text and expects failure; returns the path so messages can be checked. */
static const char *
load_fails(const char *text)
{
	const char *path = temp_file(text);

	err[0] = '\0';
	ck_assert_msg(!config_load(&cfg, path, err, sizeof(err)), "load succeeded:\n%s", text);
	ck_assert_msg(err[0] != '\0', "no error message");
	return path;
}

static void
assert_err_contains(const char *needle)
{
	ck_assert_msg(strstr(err, needle) != NULL, "error '%s' lacks '%s'", err, needle);
}

/* Runs config_dump into a string; the caller frees. */
static char *
dump(const struct config *c)
{
	FILE *f = tmpfile();
	char *out;
	long n;

	ck_assert_ptr_nonnull(f);
	config_dump(c, fileno(f));
	n = lseek(fileno(f), 0, SEEK_END);
	ck_assert_int_gt(n, 0);
	out = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(out);
	ck_assert_int_eq(pread(fileno(f), out, (size_t)n, 0), n);
	out[n] = '\0';
	fclose(f);
	return out;
}

/* Reads a whole file into a string, or NULL if it does not exist. */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s;
	long n;

	if (f == NULL)
		return NULL;
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	s = malloc((size_t)n + 1);
	ck_assert_ptr_nonnull(s);
	ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
	s[n] = '\0';
	fclose(f);
	return s;
}

/* True if text has a line starting (after optional '#' and spaces) with `name =`. */
static bool
has_setting_line(const char *text, const char *name)
{
	size_t nlen = strlen(name);

	for (const char *line = text; line != NULL && *line != '\0';) {
		const char *p = line, *nl = strchr(line, '\n');

		if (*p == '#')
			p++;
		while (*p == ' ')
			p++;
		if (strncmp(p, name, nlen) == 0) {
			p += nlen;
			while (*p == ' ' || *p == '\t')
				p++;
			if (*p == '=')
				return true;
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	return false;
}

/* ---- defaults -------------------------------------------------------------- */

START_TEST(defaults_with_null_path)
{
	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.listen, "/run/chatd/chatd.sock");
	ck_assert_int_eq(cfg.socket_mode, 0660);
	ck_assert_int_eq(cfg.workers, 4);
	ck_assert_int_eq(cfg.threads, 64);
	ck_assert(!cfg.dev_mode);
	ck_assert_int_eq(cfg.max_body_size, 1048576);
	ck_assert_str_eq(cfg.database_url, "postgresql:///chat");
	ck_assert_str_eq(cfg.jwt_secret, "");
	ck_assert_str_eq(cfg.jwt_issuer, "chatd");
	ck_assert_int_eq(cfg.jwt_ttl, 86400);
	ck_assert_str_eq(cfg.openai_base_url, "https://api.openai.com/v1");
	ck_assert_double_eq_tol(cfg.temperature, 0.7, 1e-9);
	ck_assert_int_eq(cfg.history_messages, 10);
	ck_assert_str_eq(cfg.system_prompt, "You are a helpful assistant.");
	ck_assert_str_eq(cfg.realtime_api, "client_secrets");
	ck_assert_int_eq(cfg.heartbeat_interval, 15);
	config_free(&cfg);
	ck_assert_ptr_null(cfg.listen);
	config_free(NULL);
}
END_TEST

START_TEST(defaults_match_the_table)
{
	const char *name, *env, *defval, *help;
	char *out, line[512];

	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	out = dump(&cfg);
	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++) {
		(void)snprintf(line, sizeof(line), "%s = %s\n", name, defval);
		ck_assert_msg(strstr(out, line) != NULL, "default of %s: want '%s' in dump:\n%s",
		    name, defval, out);
	}
	free(out);
	config_free(&cfg);
}
END_TEST

START_TEST(describe_lists_unique_documented_settings)
{
	const char *name, *env, *defval, *help;
	const char *names[128], *envs[128];
	size_t n = 0;

	while (config_describe(n, &name, &env, &defval, &help)) {
		ck_assert_uint_lt(n, 128);
		ck_assert_ptr_nonnull(name);
		ck_assert_ptr_nonnull(env);
		ck_assert_ptr_nonnull(defval);
		ck_assert_msg(help != NULL && strlen(help) > 5, "%s has no help", name);
		for (size_t j = 0; j < n; j++) {
			ck_assert_str_ne(names[j], name);
			ck_assert_str_ne(envs[j], env);
		}
		names[n] = name;
		envs[n] = env;
		n++;
	}
	ck_assert_uint_ge(n, 30);
	ck_assert(!config_describe(n + 1, &name, &env, &defval, &help));
	ck_assert(!config_describe((size_t)-1, &name, &env, &defval, &help));
}
END_TEST

/* ---- the file --------------------------------------------------------------- */

START_TEST(file_with_comments_blank_lines_and_quotes)
{
	load_ok("# chatd test config\n"
	    "   # indented comment\n"
	    "\n"
	    "   \t\n"
	    "workers = 8\n"
	    "threads=16\n"
	    "  model\t=\tgpt-test  \n"
	    "system_prompt = \"  Be brief. # not a comment  \"\n"
	    "cors_origins = \"https://a.example, https://b.example\"\n"
	    "pid_file = \"\"\n"
	    "dev_mode = yes\n"
	    "temperature = 1.25\n"
	    "socket_mode = 0600\n"
	    "realtime_api = sessions\n"
	    "# workers = 99\n");
	ck_assert_int_eq(cfg.workers, 8);
	ck_assert_int_eq(cfg.threads, 16);
	ck_assert_str_eq(cfg.model, "gpt-test");
	ck_assert_str_eq(cfg.system_prompt, "  Be brief. # not a comment  ");
	ck_assert_str_eq(cfg.cors_origins, "https://a.example, https://b.example");
	ck_assert_str_eq(cfg.pid_file, "");
	ck_assert(cfg.dev_mode);
	ck_assert_double_eq_tol(cfg.temperature, 1.25, 1e-9);
	ck_assert_int_eq(cfg.socket_mode, 0600);
	ck_assert_str_eq(cfg.realtime_api, "sessions");
	/* untouched settings keep their defaults */
	ck_assert_int_eq(cfg.max_tokens, 2000);
	ck_assert_str_eq(cfg.voice, "marin");
	config_free(&cfg);
}
END_TEST

START_TEST(file_later_lines_override_earlier_ones)
{
	load_ok("workers = 2\nmodel = a\nworkers = 3\nmodel = b\n");
	ck_assert_int_eq(cfg.workers, 3);
	ck_assert_str_eq(cfg.model, "b");
	config_free(&cfg);
}
END_TEST

START_TEST(file_last_line_without_newline)
{
	load_ok("workers = 2\nthreads = 7");
	ck_assert_int_eq(cfg.threads, 7);
	config_free(&cfg);
}
END_TEST

START_TEST(file_crlf_line_endings)
{
	load_ok("workers = 5\r\nmodel = m\r\n");
	ck_assert_int_eq(cfg.workers, 5);
	ck_assert_str_eq(cfg.model, "m");
	config_free(&cfg);
}
END_TEST

START_TEST(file_bool_spellings)
{
	static const struct { const char *v; bool want; } cases[] = {
		{ "1", true }, { "yes", true }, { "YES", true }, { "true", true }, { "True", true },
		{ "on", true }, { "0", false }, { "no", false }, { "false", false },
		{ "off", false }, { "OFF", false }, { "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[64];

		(void)snprintf(text, sizeof(text), "dev_mode = %s\n", cases[i].v);
		load_ok(text);
		ck_assert_msg(cfg.dev_mode == cases[i].want, "dev_mode = %s", cases[i].v);
		config_free(&cfg);
		teardown();
	}
}
END_TEST

START_TEST(file_missing_is_an_error_naming_it)
{
	ck_assert(!config_load(&cfg, "/nonexistent/dir/chatd.conf", err, sizeof(err)));
	assert_err_contains("/nonexistent/dir/chatd.conf");
}
END_TEST

START_TEST(file_that_is_a_directory_is_an_error)
{
	ck_assert(!config_load(&cfg, "/tmp", err, sizeof(err)));
	assert_err_contains("/tmp");
}
END_TEST

START_TEST(unknown_key_error_names_file_and_line)
{
	const char *path = load_fails("# comment\nworkers = 4\n\nbogus_setting = 1\n");
	char where[256];

	(void)snprintf(where, sizeof(where), "%s:4", path);
	assert_err_contains(where);
	assert_err_contains("bogus_setting");
}
END_TEST

START_TEST(line_without_equals_is_an_error)
{
	const char *path = load_fails("workers = 4\nthreads 8\n");
	char where[256];

	(void)snprintf(where, sizeof(where), "%s:2", path);
	assert_err_contains(where);
}
END_TEST

START_TEST(overlong_line_is_an_error)
{
	char *text = malloc(6000);
	char where[256];
	const char *path;

	ck_assert_ptr_nonnull(text);
	memcpy(text, "model = ", 8);
	memset(text + 8, 'm', 5000);
	memcpy(text + 5008, "\nworkers = 1\n", 14);
	path = load_fails(text);
	(void)snprintf(where, sizeof(where), "%s:1", path);
	assert_err_contains(where);
	free(text);
}
END_TEST

START_TEST(bad_integer_is_an_error)
{
	static const char *const bad[] = {
		"workers = abc\n", "workers = 4x\n", "workers = \n", "workers = 4 # four\n",
		"workers = 4.5\n", "workers = 0x10\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *path = load_fails(bad[i]);
		char where[256];

		(void)snprintf(where, sizeof(where), "%s:1", path);
		assert_err_contains(where);
		assert_err_contains("workers");
		teardown();
	}
}
END_TEST

START_TEST(integer_out_of_range_is_an_error)
{
	static const char *const bad[] = {
		"workers = 0\n", "workers = 257\n", "workers = -1\n",
		"workers = 99999999999999999999\n", "jwt_ttl = 59\n", "max_body_size = 1023\n",
		"upstream_retries = 11\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_fails(bad[i]);
		teardown();
	}
	/* the bounds themselves are fine */
	load_ok("workers = 1\nthreads = 4096\njwt_ttl = 60\nmax_requests = 0\n");
	ck_assert_int_eq(cfg.workers, 1);
	ck_assert_int_eq(cfg.threads, 4096);
	config_free(&cfg);
}
END_TEST

START_TEST(bad_bool_is_an_error)
{
	const char *path = load_fails("\ndev_mode = maybe\n");
	char where[256];

	(void)snprintf(where, sizeof(where), "%s:2", path);
	assert_err_contains(where);
	assert_err_contains("dev_mode");
	teardown();
	load_fails("dev_mode = 2\n");
}
END_TEST

START_TEST(bad_octal_mode_is_an_error)
{
	static const char *const bad[] = {
		"socket_mode = 0999\n", "socket_mode = 8\n", "socket_mode = rw\n",
		"socket_mode = 01777\n", "socket_mode = 0660x\n", "socket_mode = -1\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_fails(bad[i]);
		assert_err_contains("socket_mode");
		teardown();
	}
	load_ok("socket_mode = 0777\n");
	ck_assert_int_eq(cfg.socket_mode, 0777);
	config_free(&cfg);
}
END_TEST

START_TEST(bad_double_is_an_error)
{
	static const char *const bad[] = {
		"temperature = 2.5\n", "temperature = -0.1\n", "temperature = warm\n",
		"temperature = nan\n", "temperature = inf\n", "temperature = 1,5\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_fails(bad[i]);
		assert_err_contains("temperature");
		teardown();
	}
}
END_TEST

/* ---- the environment ---------------------------------------------------------- */

START_TEST(env_overrides_file)
{
	setenv("CHAT_WORKERS", "12", 1);
	setenv("CHAT_MODEL", "env-model", 1);
	setenv("DATABASE_URL", "postgresql://db/test", 1);
	load_ok("workers = 8\nmodel = file-model\nthreads = 9\n");
	ck_assert_int_eq(cfg.workers, 12);
	ck_assert_str_eq(cfg.model, "env-model");
	ck_assert_str_eq(cfg.database_url, "postgresql://db/test");
	ck_assert_int_eq(cfg.threads, 9);       /* not in the environment: the file wins */
	config_free(&cfg);
}
END_TEST

START_TEST(env_overrides_defaults_without_file)
{
	setenv("CHAT_DEV_MODE", "on", 1);
	setenv("CHAT_SOCKET_MODE", "0600", 1);
	setenv("CHAT_TEMPERATURE", "0", 1);
	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	ck_assert(cfg.dev_mode);
	ck_assert_int_eq(cfg.socket_mode, 0600);
	ck_assert_double_eq(cfg.temperature, 0.0);
	config_free(&cfg);
}
END_TEST

START_TEST(env_bad_value_error_names_the_variable)
{
	setenv("CHAT_WORKERS", "many", 1);
	ck_assert(!config_load(&cfg, NULL, err, sizeof(err)));
	assert_err_contains("CHAT_WORKERS");
}
END_TEST

START_TEST(env_unset_again_restores_file_value)
{
	setenv("CHAT_WORKERS", "12", 1);
	unsetenv("CHAT_WORKERS");
	load_ok("workers = 8\n");
	ck_assert_int_eq(cfg.workers, 8);
	config_free(&cfg);
}
END_TEST

/* ---- jwt_secret_file ------------------------------------------------------------ */

START_TEST(secret_file_is_read_without_trailing_newline)
{
	const char *secret = temp_file("0123456789abcdef0123456789abcdef!\n");
	char text[512];

	(void)snprintf(text, sizeof(text), "jwt_secret_file = %s\n", secret);
	load_ok(text);
	ck_assert_str_eq(cfg.jwt_secret, "0123456789abcdef0123456789abcdef!");
	config_free(&cfg);
}
END_TEST

START_TEST(secret_file_crlf_and_no_newline)
{
	const char *a = temp_file("secret-with-crlf-0123456789abcdef\r\n");
	const char *b = temp_file("secret-without-newline-0123456789");
	char text[512];

	(void)snprintf(text, sizeof(text), "jwt_secret_file = %s\n", a);
	load_ok(text);
	ck_assert_str_eq(cfg.jwt_secret, "secret-with-crlf-0123456789abcdef");
	config_free(&cfg);
	setenv("JWT_SECRET_FILE", b, 1);
	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	ck_assert_str_eq(cfg.jwt_secret, "secret-without-newline-0123456789");
	config_free(&cfg);
}
END_TEST

START_TEST(secret_in_config_wins_over_secret_file)
{
	const char *secret = temp_file("from-the-file\n");
	char text[512];

	(void)snprintf(text, sizeof(text), "jwt_secret = from-the-config\njwt_secret_file = %s\n",
	    secret);
	load_ok(text);
	ck_assert_str_eq(cfg.jwt_secret, "from-the-config");
	config_free(&cfg);
}
END_TEST

START_TEST(secret_file_missing_is_an_error)
{
	load_fails("jwt_secret_file = /nonexistent/jwt.secret\n");
	assert_err_contains("/nonexistent/jwt.secret");
}
END_TEST

/* ---- realtime_api ---------------------------------------------------------------- */

START_TEST(realtime_api_accepts_the_two_modes)
{
	load_ok("realtime_api = client_secrets\n");
	ck_assert_str_eq(cfg.realtime_api, "client_secrets");
	config_free(&cfg);
	load_ok("realtime_api = sessions\n");
	ck_assert_str_eq(cfg.realtime_api, "sessions");
	config_free(&cfg);
	load_ok("realtime_api = off\n");
	ck_assert_str_eq(cfg.realtime_api, "off");
	config_free(&cfg);
}
END_TEST

START_TEST(realtime_api_other_values_are_errors)
{
	static const char *const bad[] = {
		"realtime_api = bogus\n", "realtime_api = \n", "realtime_api = Sessions\n",
		"realtime_api = sessions \"\n",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_fails(bad[i]);
		assert_err_contains("realtime_api");
		teardown();
	}
	setenv("CHAT_REALTIME_API", "calls", 1);
	ck_assert(!config_load(&cfg, NULL, err, sizeof(err)));
	assert_err_contains("realtime_api");
}
END_TEST

START_TEST(host_id_names_a_host_or_is_empty)
{
	static const char *const good[] = { "host_id = app-a\n", "host_id = db1.example_2\n", "host_id =\n" };
	static const char *const bad[] = {
		"host_id = app:a\n", "host_id = app a\n", "host_id = gw/1\n",
		"host_id = a234567890123456789012345678901234567890123456789012345678901234\n",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		load_ok(good[i]);
		config_free(&cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		load_fails(bad[i]);
		assert_err_contains("host_id");
		teardown();
	}
}
END_TEST

START_TEST(listen_url_falls_back_to_database_url)
{
	load_ok("database_url = postgresql://pool:6432/chat\n");
	ck_assert_str_eq(config_listen_url(&cfg), "postgresql://pool:6432/chat");
	ck_assert(!cfg.database_pooled);
	config_free(&cfg);
	load_ok("database_url = postgresql://pool:6432/chat\ndatabase_pooled = 1\n"
	    "listen_database_url = postgresql://db:5432/chat\n");
	ck_assert_str_eq(config_listen_url(&cfg), "postgresql://db:5432/chat");
	ck_assert(cfg.database_pooled);
	config_free(&cfg);
}
END_TEST

/* ---- config_dump ----------------------------------------------------------------- */

START_TEST(dump_masks_secrets)
{
	char *out;

	setenv("JWT_SECRET", "jwt-SECRET-value-0123456789abcdef", 1);
	setenv("OPENAI_API_KEY", "sk-OPENAI-secret-key", 1);
	setenv("LIVEKIT_API_SECRET", "LIVEKIT-secret-value", 1);
	setenv("LIVEKIT_API_KEY", "APIpublicKey", 1);
	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	out = dump(&cfg);
	ck_assert_ptr_nonnull(strstr(out, "jwt_secret = (set)\n"));
	ck_assert_ptr_nonnull(strstr(out, "openai_api_key = (set)\n"));
	ck_assert_ptr_nonnull(strstr(out, "livekit_api_secret = (set)\n"));
	ck_assert_ptr_null(strstr(out, "jwt-SECRET-value"));
	ck_assert_ptr_null(strstr(out, "OPENAI-secret"));
	ck_assert_ptr_null(strstr(out, "LIVEKIT-secret"));
	/* the public key is not a secret */
	ck_assert_ptr_nonnull(strstr(out, "livekit_api_key = APIpublicKey\n"));
	free(out);
	config_free(&cfg);
}
END_TEST

START_TEST(dump_masks_secret_read_from_file)
{
	const char *secret = temp_file("FILE-secret-0123456789abcdef0123\n");
	char text[512], *out;

	(void)snprintf(text, sizeof(text), "jwt_secret_file = %s\n", secret);
	load_ok(text);
	out = dump(&cfg);
	ck_assert_ptr_nonnull(strstr(out, "jwt_secret = (set)\n"));
	ck_assert_ptr_null(strstr(out, "FILE-secret"));
	free(out);
	config_free(&cfg);
}
END_TEST

START_TEST(dump_lists_every_setting_once)
{
	const char *name, *env, *defval, *help;
	char *out, needle[256];

	ck_assert_msg(config_load(&cfg, NULL, err, sizeof(err)), "%s", err);
	out = dump(&cfg);
	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++) {
		const char *hit;

		(void)snprintf(needle, sizeof(needle), "%s = ", name);
		hit = strstr(out, needle);
		ck_assert_msg(hit != NULL && (hit == out || hit[-1] == '\n'), "%s not dumped", name);
	}
	free(out);
	config_free(&cfg);
}
END_TEST

/* ---- the documentation check (pgbouncer-style) ------------------------------------ */

START_TEST(every_setting_is_in_chatd_conf)
{
	const char *name, *env, *defval, *help;
	char *conf = slurp(SRCDIR "/fcgi/chatd.conf");

	ck_assert_msg(conf != NULL, "cannot read " SRCDIR "/fcgi/chatd.conf");
	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++) {
		ck_assert_msg(has_setting_line(conf, name),
		    "setting %s is not documented as `#%s =` in fcgi/chatd.conf", name, name);
		ck_assert_msg(strstr(conf, env) != NULL,
		    "environment variable %s (%s) is not mentioned in fcgi/chatd.conf", env, name);
	}
	free(conf);
}
END_TEST

START_TEST(chatd_conf_settings_all_exist)
{
	/* The reverse: every `#name =` line of chatd.conf names a real setting, and
	 * the shipped file (all commented out) loads. */
	char *conf = slurp(SRCDIR "/fcgi/chatd.conf");

	ck_assert_ptr_nonnull(conf);
	for (char *line = conf; line != NULL && *line != '\0';) {
		char *nl = strchr(line, '\n'), *p = line, *eq;

		if (nl != NULL)
			*nl = '\0';
		if (*p == '#')
			p++;
		eq = strstr(p, " =");
		if (eq != NULL && p != line && strspn(p, "abcdefghijklmnopqrstuvwxyz_") == (size_t)(eq - p)) {
			const char *name, *env, *defval, *help;
			bool found = false;

			*eq = '\0';
			for (size_t i = 0; !found && config_describe(i, &name, &env, &defval, &help); i++)
				found = strcmp(name, p) == 0;
			ck_assert_msg(found, "chatd.conf documents unknown setting `%s`", p);
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
	free(conf);
	ck_assert_msg(config_load(&cfg, SRCDIR "/fcgi/chatd.conf", err, sizeof(err)), "%s", err);
	config_free(&cfg);
}
END_TEST

START_TEST(every_setting_is_in_readme_configuration)
{
	const char *name, *env, *defval, *help;
	char *readme = slurp(SRCDIR "/README.md"), *section;

	/* The README is being written: check only once it has the section. */
	if (readme == NULL)
		return;
	section = strstr(readme, "\n## Configuration");
	if (section == NULL && strncmp(readme, "## Configuration", 16) == 0)
		section = readme;
	if (section == NULL) {
		free(readme);
		return;
	}
	for (size_t i = 0; config_describe(i, &name, &env, &defval, &help); i++)
		ck_assert_msg(strstr(readme, name) != NULL,
		    "setting %s is not documented in README.md", name);
	free(readme);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

static Suite *
config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("config");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, defaults_with_null_path);
	tcase_add_test(tc, host_id_names_a_host_or_is_empty);
	tcase_add_test(tc, listen_url_falls_back_to_database_url);
	tcase_add_test(tc, defaults_match_the_table);
	tcase_add_test(tc, describe_lists_unique_documented_settings);
	tcase_add_test(tc, file_with_comments_blank_lines_and_quotes);
	tcase_add_test(tc, file_later_lines_override_earlier_ones);
	tcase_add_test(tc, file_last_line_without_newline);
	tcase_add_test(tc, file_crlf_line_endings);
	tcase_add_test(tc, file_bool_spellings);
	tcase_add_test(tc, file_missing_is_an_error_naming_it);
	tcase_add_test(tc, file_that_is_a_directory_is_an_error);
	tcase_add_test(tc, unknown_key_error_names_file_and_line);
	tcase_add_test(tc, line_without_equals_is_an_error);
	tcase_add_test(tc, overlong_line_is_an_error);
	tcase_add_test(tc, bad_integer_is_an_error);
	tcase_add_test(tc, integer_out_of_range_is_an_error);
	tcase_add_test(tc, bad_bool_is_an_error);
	tcase_add_test(tc, bad_octal_mode_is_an_error);
	tcase_add_test(tc, bad_double_is_an_error);
	tcase_add_test(tc, env_overrides_file);
	tcase_add_test(tc, env_overrides_defaults_without_file);
	tcase_add_test(tc, env_bad_value_error_names_the_variable);
	tcase_add_test(tc, env_unset_again_restores_file_value);
	tcase_add_test(tc, secret_file_is_read_without_trailing_newline);
	tcase_add_test(tc, secret_file_crlf_and_no_newline);
	tcase_add_test(tc, secret_in_config_wins_over_secret_file);
	tcase_add_test(tc, secret_file_missing_is_an_error);
	tcase_add_test(tc, realtime_api_accepts_the_two_modes);
	tcase_add_test(tc, realtime_api_other_values_are_errors);
	tcase_add_test(tc, dump_masks_secrets);
	tcase_add_test(tc, dump_masks_secret_read_from_file);
	tcase_add_test(tc, dump_lists_every_setting_once);
	tcase_add_test(tc, every_setting_is_in_chatd_conf);
	tcase_add_test(tc, chatd_conf_settings_all_exist);
	tcase_add_test(tc, every_setting_is_in_readme_configuration);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
