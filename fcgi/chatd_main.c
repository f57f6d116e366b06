/* chatd_main.c: the chatd command: options, configuration, the master. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "account.h"
#include "auth.h"
#include "config.h"
#include "json_out.h"
#include "log.h"
#include "process.h"
#include "metrics.h"
#include "pool.h"
#include "store.h"

static void
usage(void)
{
	fprintf(stderr, "usage: chatd [-t] [-c config-file]\n"
	    "       chatd [-c config-file] --create-user NAME < password\n"
	    "  -c FILE  read settings from FILE (environment variables override it)\n"
	    "  -t       check the configuration, print it (secrets masked) and exit\n"
	    "  -D       print the settings reference as a Markdown table and exit\n"
	    "  --create-user NAME\n"
	    "           create the user NAME with the password read from standard input\n"
	    "           (one line), print it as JSON and exit (for registration = closed)\n");
	exit(2);
}

static bool
write_pid_file(const char *path)
{
	char line[32];
	int fd, n;

	if (path[0] == '\0')
		return true;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) == -1) {
		log_error("pid file %s: %s", path, strerror(errno));
		return false;
	}
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (n < 0 || write(fd, line, (size_t)n) != n) {
		close(fd);
		return false;
	}
	return close(fd) == 0;
}

/* The README's configuration table comes from the same table as the parser. */
static void
print_reference(void)
{
	const char *name, *env, *def, *help;

	printf("| setting | environment | default | meaning |\n|---|---|---|---|\n");
	for (size_t i = 0; config_describe(i, &name, &env, &def, &help); i++)
		printf("| `%s` | `%s` | %s%s%s | %s |\n", name, env, def[0] ? "`" : "",
		    def[0] ? def : "(empty)", def[0] ? "`" : "", help);
}

/* Reads one line, the password, from standard input into buf (len bytes),
 * without echo on a terminal. Returns its length, or -1 (nothing read, or
 * longer than AUTH_PASSWORD_MAX). */
static long
read_password(char *buf, size_t len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &old) == 0;
	size_t n;

	if (tty) {
		fprintf(stderr, "password: ");
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0)
			tty = false;
	}
	if (fgets(buf, (int)len, stdin) == NULL)
		buf[0] = '\0';
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fprintf(stderr, "\n");
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	else if (n + 1 >= len)
		return -1;   /* no end of line within the buffer: too long */
	if (n > 0 && buf[n - 1] == '\r')
		buf[--n] = '\0';
	return n > 0 ? (long)n : -1;
}

/* chatd --create-user NAME: what POST /api/auth/register does (the same
 * checks, argon2id and store), for an administrator when registration is
 * closed. Returns the exit status. */
static int
create_user(const struct config *cfg, const char *username)
{
	char password[AUTH_PASSWORD_MAX + 2];
	struct store *store = NULL;
	char *user = NULL;
	enum store_rc rc;
	long n;
	int status = 1;

	if (!account_username_valid(username, strlen(username))) {
		fprintf(stderr, "chatd: username %s\n", ACCOUNT_MSG_USERNAME);
		return 1;
	}
	if ((n = read_password(password, sizeof(password))) < 0 || !account_password_valid((size_t)n)) {
		fprintf(stderr, "chatd: the password (one line on standard input) must hold %d to %d bytes\n",
		    AUTH_PASSWORD_MIN, AUTH_PASSWORD_MAX);
		goto done;
	}
	if ((store = store_new(cfg->database_url, 1)) == NULL) {
		fprintf(stderr, "chatd: out of memory\n");
		goto done;
	}
	rc = account_create(store, username, NULL, password, (size_t)n, &user);
	if (rc == STORE_CONFLICT)
		fprintf(stderr, "chatd: user %s already exists\n", username);
	else if (rc == STORE_UNAVAILABLE)
		fprintf(stderr, "chatd: the database (database_url) is unavailable\n");
	else if (rc != STORE_OK)
		fprintf(stderr, "chatd: the user was not created\n");
	else {
		(void)json_compact(user, strlen(user));  /* like the API's answer */
		printf("%s\n", user);
		status = fflush(stdout) == 0 ? 0 : 1;
	}
done:
	explicit_bzero(password, sizeof(password));
	free(user);
	store_free(store);
	return status;
}

int
main(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "create-user", required_argument, NULL, 'U' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = NULL, *new_user = NULL, *why;
	struct config *cfg;
	enum log_level level;
	char err[512];
	bool check_only = false;
	int c, fd, rc;

	while ((c = getopt_long(argc, argv, "c:tDh", long_options, NULL)) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
		case 'U': new_user = optarg; break;
		case 't': check_only = true; break;
		case 'D': print_reference(); return 0;
		default: usage();
		}
	}
	if (optind != argc)
		usage();
	if ((cfg = malloc(sizeof(*cfg))) == NULL)
		return 1;
	if (!config_load(cfg, config_path, err, sizeof(err))) {
		fprintf(stderr, "chatd: %s\n", err);
		free(cfg);
		return 1;
	}
	/* Process-wide, inherited by the workers; a reload keeps them. */
	process_set_host(cfg->host_id);
	store_set_pooled(cfg->database_pooled);
	if (!log_level_parse(cfg->log_level, &level)) {
		fprintf(stderr, "chatd: log_level: expected error, warn, info or debug\n");
		return 1;
	}
	if (new_user != NULL) {   /* needs the database, not the JWT secret */
		rc = create_user(cfg, new_user);
		config_free(cfg);
		free(cfg);
		return rc;
	}
	if ((why = auth_secret_problem(cfg)) != NULL) {
		fprintf(stderr, "chatd: %s\n", why);
		return 1;
	}
	if (check_only) {
		config_dump(cfg, STDOUT_FILENO);
		config_free(cfg);
		free(cfg);
		return 0;
	}
	(void)log_open(cfg->log_file, level);
	process_raise_fd_limit();
	if (!metrics_init(METRICS_SCOPE_POOL))
		return 1;
	if ((fd = pool_listen(cfg)) == -1)
		return 1;
	if (!write_pid_file(cfg->pid_file))
		return 1;
	rc = pool_run(cfg, config_path, fd);  /* the pool closes fd */
	if (strchr(cfg->listen, '/') != NULL)
		(void)unlink(strncmp(cfg->listen, "unix:", 5) == 0 ? cfg->listen + 5 : cfg->listen);
	if (cfg->pid_file[0] != '\0')
		(void)unlink(cfg->pid_file);
	config_free(cfg);
	free(cfg);
	return rc;
}
