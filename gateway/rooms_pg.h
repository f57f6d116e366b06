/* rooms_pg.h: the gateway's own PostgreSQL connection: LISTEN/NOTIFY
 * between gateway processes (and hosts), and the generations chatd hands
 * over.
 *
 * The only gateway module that includes libpq-fe.h (the core's store.c has
 * no asynchronous LISTEN; it serves the engine's blocking queries). One
 * connection LISTENs on three channels:
 *   sio_room     room traffic published by any gateway (relay.c's payloads)
 *   chat_cancel  cancels of replies in flight (the core's live.h contract)
 *   gw_jobs      a generation queued in gateway_jobs by
 *                POST /openai/chatCompletion/stream/start (chatd)
 * Its socket joins the event loop (loop.h); publishing and claiming are
 * short blocking round trips on the loop's thread. When the connection
 * drops it is reopened every second; meanwhile publications are dropped
 * (and logged) and rooms stay local. */
#ifndef GATEWAY_ROOMS_PG_H
#define GATEWAY_ROOMS_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROOMS_PG_CHANNEL   "sio_room"
#define ROOMS_PG_JOBS      "gw_jobs"
#define ROOMS_PG_CANCEL    "chat_cancel"
#define ROOMS_PG_PAYLOAD_MAX 7900   /* PostgreSQL refuses payloads of 8000 bytes */

struct rooms_pg_hooks {
	void (*room)(const char *payload);     /* a NOTIFY on sio_room (own ones too) */
	void (*cancel)(const char *reply_id);  /* a NOTIFY on chat_cancel */
	void (*jobs)(void);                    /* jobs may be waiting: claim them */
};

/* Remembers conninfo (copied) and the hooks, and connects (a failure is
 * retried by rooms_pg_tick). False only when out of memory. */
bool rooms_pg_start(const char *conninfo, const struct rooms_pg_hooks *hooks);

/* Closes the connection and forgets everything. */
void rooms_pg_stop(void);

/* True while connected and listening. */
bool rooms_pg_ready(void);

/* NOTIFY sio_room once per string of json_array (a JSON array of strings,
 * each at most ROOMS_PG_PAYLOAD_MAX bytes), in order, in one round trip.
 * False if not connected or the statement failed (logged). */
bool rooms_pg_publish(const char *json_array, size_t len);

/* One claimed job: borrowed strings, valid for the call. user_id is NULL
 * for an anonymous caller. */
typedef void (*rooms_pg_job_fn)(void *ctx, const char *room, const char *user_id,
    const char *messages_json);

/* Claims (deletes) up to max queued jobs not older than two minutes that
 * no other gateway holds, and calls fn for each. Returns how many, or -1. */
int rooms_pg_claim_jobs(int max, rooms_pg_job_fn fn, void *ctx);

/* Reconnects when down; sweeps for jobs a missed NOTIFY left behind and
 * drops expired ones. Call every ~250 ms. */
void rooms_pg_tick(int64_t now_ms);

#endif
