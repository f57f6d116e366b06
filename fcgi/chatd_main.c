/* chatd_main.c: the chatd command: options, configuration, the master. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "process.h"
#include "metrics.h"
#include "pool.h"

static void
usage(void)
{
	fprintf(stderr, "usage: chatd [-t] [-c config-file]\n"
	    "  -c FILE  read settings from FILE (environment variables override it)\n"
	    "  -t       check the configuration, print it (secrets masked) and exit\n"
	    "  -D       print the settings reference as a Markdown table and exit\n");
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

int
main(int argc, char **argv)
{
	const char *config_path = NULL;
	struct config *cfg;
	enum log_level level;
	char err[512];
	bool check_only = false;
	int c, fd, rc;

	while ((c = getopt(argc, argv, "c:tDh")) != -1) {
		switch (c) {
		case 'c': config_path = optarg; break;
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
	if (!log_level_parse(cfg->log_level, &level)) {
		fprintf(stderr, "chatd: log_level: expected error, warn, info or debug\n");
		return 1;
	}
	if (strlen(cfg->jwt_secret) < 32) {
		fprintf(stderr, "chatd: jwt_secret (or jwt_secret_file) must hold at least 32 bytes\n");
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
