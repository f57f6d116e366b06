/* procmon.c: RSS and CPU of server processes from /proc. */
#include "procmon.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROCMON_CHILDREN_MAX 4096

struct proc_stat {
	pid_t     ppid;
	uint64_t  ticks;        /* utime + stime */
	uint64_t  child_ticks;  /* cutime + cstime */
	uint64_t  rss_kib;
};

/* Reads /proc/PID/stat. Returns false when the process is gone. */
static bool
procmon_read_stat(pid_t pid, struct proc_stat *st)
{
	char path[64], buf[1024], *p, *save = NULL, *tok;
	ssize_t n;
	int fd, field;
	long page_kib = sysconf(_SC_PAGESIZE) / 1024;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields restart after the last
	 * ')'. The next token is field 3 (state). */
	if ((p = strrchr(buf, ')')) == NULL)
		return false;
	*st = (struct proc_stat){ 0 };
	field = 3;
	for (tok = strtok_r(p + 1, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save),
	    field++) {
		unsigned long long v = strtoull(tok, NULL, 10);

		switch (field) {
		case 3:
			if (tok[0] == 'Z' || tok[0] == 'X')
				return false;   /* a zombie holds no memory any more */
			break;
		case 4:  st->ppid = (pid_t)v; break;
		case 14: case 15: st->ticks += v; break;
		case 16: case 17: st->child_ticks += v; break;
		case 24: st->rss_kib = (uint64_t)v * (uint64_t)page_kib; return true;
		default: break;
		}
	}
	return false;
}

/* PSS of pid from /proc/PID/smaps_rollup (Linux 4.14+); 0 when missing. */
static uint64_t
procmon_read_pss(pid_t pid)
{
	char path[64], line[256];
	unsigned long long kib = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", (int)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Pss: %llu kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Appends the children of pid to kids (up to max). Uses
 * /proc/PID/task/TID/children when the kernel has it, else scans /proc. */
static int
procmon_children(pid_t pid, pid_t *kids, int max)
{
	char path[96];
	DIR *d;
	struct dirent *de;
	int n = 0;
	bool have_children_file = false;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	if ((d = opendir(path)) != NULL) {
		while ((de = readdir(d)) != NULL && n < max) {
			FILE *f;
			int kid;

			if (!isdigit((unsigned char)de->d_name[0]))
				continue;
			snprintf(path, sizeof(path), "/proc/%d/task/%.16s/children", (int)pid,
			    de->d_name);
			if ((f = fopen(path, "re")) == NULL)
				continue;
			have_children_file = true;
			while (n < max && fscanf(f, "%d", &kid) == 1)
				kids[n++] = kid;
			fclose(f);
		}
		closedir(d);
	}
	if (have_children_file)
		return n;
	if ((d = opendir("/proc")) == NULL)
		return n;
	while ((de = readdir(d)) != NULL && n < max) {
		struct proc_stat st;
		pid_t p;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		p = (pid_t)atoi(de->d_name);
		if (procmon_read_stat(p, &st) && st.ppid == pid)
			kids[n++] = p;
	}
	closedir(d);
	return n;
}

/* Sums RSS and CPU of one service now. Returns false when its master is
 * gone. */
static bool
procmon_measure(const struct procmon_service *s, bool want_pss, uint64_t *rss_kib,
    uint64_t *pss_kib, double *cpu_s, int *procs)
{
	static pid_t kids[PROCMON_CHILDREN_MAX];   /* sampler and main never overlap here */
	struct proc_stat st;
	uint64_t ticks;
	long hz = sysconf(_SC_CLK_TCK);
	int n;

	*rss_kib = *pss_kib = 0;
	*cpu_s = 0;
	*procs = 0;
	if (s->pid <= 0 || !procmon_read_stat(s->pid, &st))
		return false;
	*rss_kib = st.rss_kib;
	if (want_pss)
		*pss_kib = procmon_read_pss(s->pid);
	ticks = st.ticks + st.child_ticks;
	*procs = 1;
	if (s->children) {
		n = procmon_children(s->pid, kids, PROCMON_CHILDREN_MAX);
		for (int i = 0; i < n; i++) {
			if (!procmon_read_stat(kids[i], &st))
				continue;
			*rss_kib += st.rss_kib;
			if (want_pss)
				*pss_kib += procmon_read_pss(kids[i]);
			ticks += st.ticks;
			(*procs)++;
		}
	}
	*cpu_s = (double)ticks / (double)(hz > 0 ? hz : 100);
	return true;
}

/* Busy CPU seconds of the whole machine (all CPUs) since boot: everything
 * but idle and iowait. Lets a report show how much of the machine other
 * work took during a run. */
static double
procmon_machine_busy_s(void)
{
	unsigned long long v[8] = { 0 };
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/stat", "re");
	int n;

	if (f == NULL)
		return 0;
	n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
	    &v[4], &v[5], &v[6], &v[7]);
	fclose(f);
	if (n < 4)
		return 0;
	/* user nice system idle iowait irq softirq steal */
	return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)(hz > 0 ? hz : 100);
}

void
procmon_init(struct procmon *m, int interval_ms)
{
	memset(m, 0, sizeof(*m));
	m->interval_ms = interval_ms > 0 ? interval_ms : 100;
	m->cpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
	atomic_init(&m->stop, false);
	atomic_init(&m->want_pss, false);
	pthread_mutex_init(&m->mu, NULL);
}

bool
procmon_add(struct procmon *m, const char *name, const char *pidfile, bool children)
{
	struct procmon_service *s;
	struct proc_stat st;
	FILE *f;
	int pid = 0;

	if (m->n == PROCMON_SERVICES)
		return false;
	if ((f = fopen(pidfile, "re")) == NULL)
		return false;
	if (fscanf(f, "%d", &pid) != 1)
		pid = 0;
	fclose(f);
	if (pid <= 0 || !procmon_read_stat(pid, &st))
		return false;
	s = &m->svc[m->n++];
	memset(s, 0, sizeof(*s));
	snprintf(s->name, sizeof(s->name), "%s", name);
	snprintf(s->pidfile, sizeof(s->pidfile), "%s", pidfile);
	s->children = children;
	s->pid = pid;
	return true;
}

static void
procmon_sample(struct procmon *m)
{
	bool want_pss = atomic_exchange(&m->want_pss, false);

	for (int i = 0; i < m->n; i++) {
		struct procmon_service *s = &m->svc[i];
		uint64_t rss, pss;
		double cpu;
		int procs;

		if (!procmon_measure(s, want_pss, &rss, &pss, &cpu, &procs))
			continue;
		pthread_mutex_lock(&m->mu);
		if (rss > s->peak_rss_kib)
			s->peak_rss_kib = rss;
		if (want_pss)
			s->mark_pss_kib = pss;
		if (procs > s->peak_procs)
			s->peak_procs = procs;
		pthread_mutex_unlock(&m->mu);
	}
	m->samples++;
}

static void *
procmon_thread(void *arg)
{
	struct procmon *m = arg;
	struct timespec next;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!atomic_load(&m->stop)) {
		procmon_sample(m);
		next.tv_nsec += (long)m->interval_ms * 1000000L;
		while (next.tv_nsec >= 1000000000L) {
			next.tv_nsec -= 1000000000L;
			next.tv_sec++;
		}
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
	}
	return NULL;
}

bool
procmon_begin(struct procmon *m)
{
	m->busy_begin_s = m->busy_end_s = procmon_machine_busy_s();
	for (int i = 0; i < m->n; i++) {
		struct procmon_service *s = &m->svc[i];
		uint64_t rss, pss;
		double cpu;
		int procs;

		procmon_measure(s, true, &rss, &pss, &cpu, &procs);
		s->base_rss_kib = s->peak_rss_kib = rss;
		s->base_pss_kib = s->end_pss_kib = pss;
		s->base_procs = s->peak_procs = procs;
		s->cpu_begin_s = s->cpu_end_s = cpu;
		s->end_rss_kib = rss;
	}
	if (m->n == 0)
		return true;
	atomic_store(&m->stop, false);
	if (pthread_create(&m->thread, NULL, procmon_thread, m) != 0)
		return false;
	m->running = true;
	return true;
}

void
procmon_mark_pss(struct procmon *m)
{
	atomic_store(&m->want_pss, true);
}

static void
procmon_join(struct procmon *m)
{
	if (!m->running)
		return;
	atomic_store(&m->stop, true);
	pthread_join(m->thread, NULL);
	m->running = false;
}

void
procmon_end(struct procmon *m)
{
	procmon_join(m);
	m->busy_end_s = procmon_machine_busy_s();
	for (int i = 0; i < m->n; i++) {
		struct procmon_service *s = &m->svc[i];
		uint64_t rss, pss;
		double cpu;
		int procs;

		if (!procmon_measure(s, true, &rss, &pss, &cpu, &procs))
			continue;
		s->end_rss_kib = rss;
		s->end_pss_kib = pss;
		s->cpu_end_s = cpu;
		if (rss > s->peak_rss_kib)
			s->peak_rss_kib = rss;
	}
}

void
procmon_free(struct procmon *m)
{
	if (m == NULL)
		return;
	procmon_join(m);
	pthread_mutex_destroy(&m->mu);
}
