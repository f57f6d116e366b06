/* sweep.h: every reply ends: heartbeats of the processes that own replies,
 * and the sweep that interrupts the replies of owners that are gone.
 *
 * A reply in flight is a 'streaming' row whose worker column names its
 * owner: "host:pid" (a chatd worker) or "gw:host:pid" (a gateway). An owner that dies
 * without ending it (kill -9, a crash, an exit while PostgreSQL was down)
 * leaves it 'streaming' for ever unless someone else ends it: the sweep.
 * An owner is gone when, on this host, its pid is dead or belongs to
 * another process (a different start time); on another host, when its
 * heartbeat (migrations/009_processes.sql) stopped for SWEEP_STALE_S while
 * the database was up. Its replies then become 'interrupted' with the
 * error 'worker_died', keeping the text that was stored. */
#ifndef CHAT_SWEEP_H
#define CHAT_SWEEP_H

#include <stdbool.h>

struct store;
struct store_owner;

#define SWEEP_BEAT_S      2    /* how often a process renews its heartbeat */
#define SWEEP_STALE_S     15   /* a heartbeat older than this is a dead owner's */
#define SWEEP_INTERVAL_S  5    /* how often the chatd master sweeps */

/* True if the owner o is known to be gone (see above); host is this
 * host's name. Reads /proc: call it where o's host could run it. */
bool sweep_owner_dead(const struct store_owner *o, const char *host);

/* One sweep: first the endings spooled in spool_dir by processes that
 * exited while PostgreSQL was down (spool.h), then every owner of a reply
 * still in flight. Returns the replies ended, or -1 if the database did not
 * take it (call again later). st is borrowed. */
long sweep_run(struct store *st, const char *spool_dir);

#define SWEEP_METRICS_S   3600 /* how often the master applies metrics retention */

/* stream_metrics retention: the coming days' partitions made, those older
 * than retention_days dropped (logged). Returns the partitions dropped, or
 * -1 if the database did not take it (a lock it could not get: retry). */
long sweep_metrics(struct store *st, int retention_days);

/* Starts this process's heartbeat thread: its row in processes (id
 * "host:pid", kind "worker" or "gateway") is written now and every
 * SWEEP_BEAT_S, retried every second while PostgreSQL is away. With
 * sweep_first, the thread also sweeps once, retrying until the database
 * takes it (a gateway's start-up sweep, with spool_dir). Call after fork,
 * before the process begins any reply; conninfo, id and spool_dir are copied. False if the
 * thread cannot start. One per process. */
bool sweep_beat_start(const char *conninfo, const char *id, const char *kind, bool sweep_first,
    const char *spool_dir);

/* Stops and joins the heartbeat thread and removes this process's row
 * (once, if the database answers: otherwise the sweep finds the pid dead).
 * Call only after the process ended or handed on all its replies. Safe
 * when the thread never started. */
void sweep_beat_stop(void);

#endif
