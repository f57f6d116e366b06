/* procmon.h: memory and CPU of the server's processes during a run.
 *
 * A service is a pid file (chatd.pid, nginx.pid, upstream.pid, PostgreSQL's
 * postmaster.pid) naming a master process, optionally with its children
 * (prefork workers, nginx workers, PostgreSQL backends). A sampler thread
 * reads /proc/PID/stat of each every interval and keeps, per service, the
 * peak of the summed RSS. PSS (proportional set size: pages shared between
 * processes, like PostgreSQL's shared buffers or the pool's copy-on-write
 * pages, counted once in total) costs a page-table walk under the target's
 * mmap lock, too much to repeat every 100 ms on a pool of a thousand
 * threads: it is read at procmon_begin, on request (procmon_mark_pss, e.g.
 * when every stream is open) and at procmon_end. CPU is utime+stime of the master and its live
 * children plus the master's cutime+cstime (children it already reaped, e.g.
 * a recycled worker), read once at procmon_begin and once at procmon_end. */
#ifndef LOAD_PROCMON_H
#define LOAD_PROCMON_H

#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCMON_SERVICES 8
#define PROCMON_NAME_MAX 24

struct procmon_service {
	char      name[PROCMON_NAME_MAX];
	char      pidfile[PATH_MAX];
	bool      children;        /* count the master's children too */
	pid_t     pid;             /* the master; 0 when it was not running */
	uint64_t  base_rss_kib;    /* summed RSS at procmon_begin */
	int       base_procs;
	uint64_t  peak_rss_kib;    /* highest summed RSS seen by the sampler */
	int       peak_procs;
	uint64_t  end_rss_kib;     /* at procmon_end */
	uint64_t  base_pss_kib;    /* PSS at procmon_begin (0: kernel lacks it) */
	uint64_t  mark_pss_kib;    /* PSS at procmon_mark_pss (0: never marked) */
	uint64_t  end_pss_kib;
	double    cpu_begin_s;     /* CPU seconds consumed up to procmon_begin */
	double    cpu_end_s;       /* ... and up to procmon_end */
};

struct procmon {
	struct procmon_service  svc[PROCMON_SERVICES];
	int                     n;
	int                     cpus;         /* online CPUs */
	double                  busy_begin_s; /* all CPUs' busy time, /proc/stat */
	double                  busy_end_s;
	int                     interval_ms;
	uint64_t                samples;      /* sampler passes */
	pthread_t               thread;
	bool                    running;
	atomic_bool             stop;
	atomic_bool             want_pss;     /* sampler: read PSS next pass */
	pthread_mutex_t         mu;           /* guards svc[] figures */
};

/* Prepares an empty monitor sampling every interval_ms. */
void procmon_init(struct procmon *m, int interval_ms);

/* Adds a service by pid file. Returns false (and adds nothing) when the pid
 * file is unreadable or its process is not running; the caller decides
 * whether that matters. name and pidfile are copied. */
bool procmon_add(struct procmon *m, const char *name, const char *pidfile, bool children);

/* Records the baseline (RSS, CPU, the machine's busy time) and starts the
 * sampler thread when there are services. Returns
 * false if the thread could not start (the baseline is still valid). */
bool procmon_begin(struct procmon *m);

/* Asks the sampler to read PSS at its next pass (within one interval);
 * cheap to call, from any thread. */
void procmon_mark_pss(struct procmon *m);

/* Stops the sampler and records the final CPU and RSS. */
void procmon_end(struct procmon *m);

/* Stops the sampler if running. The figures stay readable. */
void procmon_free(struct procmon *m);

#endif
