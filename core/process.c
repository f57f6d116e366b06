/* process.c: process-wide set-up shared by chatd and the gateway. */
#include "process.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>
#include <sys/resource.h>

#include "log.h"

void
process_raise_fd_limit(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warn("getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
		return;
	}
	if (rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
		log_warn("setrlimit(RLIMIT_NOFILE, %llu): %s", (unsigned long long)rl.rlim_max,
		    strerror(errno));
}

bool
process_start_time(pid_t pid, long long *out)
{
	char path[64], line[1024], *p, *end;
	FILE *f;
	size_t n;

	(void)snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return false;
	n = fread(line, 1, sizeof(line) - 1, f);
	(void)fclose(f);
	line[n] = '\0';
	/* "pid (comm) state ..."; comm may hold spaces and parentheses. */
	if ((p = strrchr(line, ')')) == NULL)
		return false;
	p++;
	/* Field 3 (state) follows; the start time is field 22. */
	for (int field = 2; field < 22; field++) {
		while (*p == ' ')
			p++;
		if (*p == '\0')
			return false;
		if (field < 21)
			while (*p != ' ' && *p != '\0')
				p++;
	}
	errno = 0;
	*out = strtoll(p, &end, 10);
	return errno == 0 && end != p;
}

bool
process_alive(pid_t pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

/* Set once at start-up (host_id), before any thread; read-only after. */
static char host_id[64];

void
process_set_host(const char *id)
{
	(void)snprintf(host_id, sizeof(host_id), "%s", id != NULL ? id : "");
}

void
process_host(char *out, size_t len)
{
	if (host_id[0] != '\0')
		(void)snprintf(out, len, "%s", host_id);
	else if (gethostname(out, len) != 0)
		(void)snprintf(out, len, "localhost");
	out[len - 1] = '\0';
}
