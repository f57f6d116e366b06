/* store.h: PostgreSQL storage: a per-process connection pool and every query.
 *
 * The only module that includes libpq-fe.h. All SQL lives in store.c, is
 * prepared once per connection and takes parameters only. Queries that feed a
 * response build their JSON in SQL, so rows reach the client without being
 * re-encoded in C. Returned strings are owned by the caller (free()). */
#ifndef CHAT_STORE_H
#define CHAT_STORE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "reply_end.h"
#include "reply_status.h"

enum store_rc {
	STORE_OK = 0,
	STORE_NOT_FOUND,      /* no row, or a reference to a missing row */
	STORE_CONFLICT,       /* unique violation */
	STORE_INVALID,        /* the database refused the value (check, length) */
	STORE_UNAVAILABLE,    /* no connection: answer 503 */
	STORE_ERROR,          /* anything else: answer 500 */
	STORE_LIMITED,        /* a cap refused it (stream slots): answer 429 */
};

struct store;

/* Creates a pool of up to size connections to conninfo (URI or key=value).
 * Connections are opened lazily, after fork. Returns NULL on allocation
 * failure. */
struct store *store_new(const char *conninfo, int size);

/* store_new whose connections say app_name (a static string) to
 * PostgreSQL, e.g. "chatd-sweep", instead of "chatd". */
struct store *store_new_named(const char *conninfo, int size, const char *app_name);

/* Process-wide (config database_pooled): true when conninfo reaches
 * PostgreSQL through a transaction-mode pooler such as PgBouncer; statements
 * are then sent with their text instead of prepared once per connection.
 * Call before any store connects. */
void store_set_pooled(bool pooled);

/* Closes every connection and frees the pool. NULL-safe. */
void store_free(struct store *st);

/* Maps a result code to an HTTP status (200, 404, 409, 400, 503, 500, 429). */
int store_http_status(enum store_rc rc);

/* True if a trivial query succeeds (readiness probe). */
bool store_ping(struct store *st);

/* --- users --- */

/* Inserts a user; *user_json is {"id","username","email","created_at"}. */
enum store_rc store_user_create(struct store *st, const char *username, const char *email,
    const char *password_hash, char **user_json);

/* Looks up a user for login (case-insensitive name). */
enum store_rc store_user_credentials(struct store *st, const char *username,
    char **user_id, char **password_hash);

enum store_rc store_user_get(struct store *st, const char *user_id, char **user_json);

/* STORE_OK if the user still exists (a token outlives a deleted user). */
enum store_rc store_user_exists(struct store *st, const char *user_id);

/* --- sessions (always scoped to their owner: user_id NULL means anonymous) --- */

enum store_rc store_session_create(struct store *st, const char *user_id, const char *title,
    const char *initial_message, char **session_json);

/* Which page of the session list (newest first, by updated_at then id). */
struct store_list_page {
	int         limit;
	int         offset;     /* used only without after_id and q */
	long long   after_us;   /* with after_id: the cursor's updated_at, µs (list_cursor.h) */
	const char *after_id;   /* the last session of the previous page, or NULL */
	const char *q;          /* words every listed session has (title or messages), or NULL */
};

/* {"sessions":[...],"limit","offset","has_more","next_cursor"}:
 * next_cursor (string, or null on the last page) continues after the last
 * session shown, whether this page came by offset, cursor or search. */
enum store_rc store_session_list(struct store *st, const char *user_id,
    const struct store_list_page *pg, char **list_json);

/* The session with its last limit messages before message before (the
 * newest when NULL), oldest first, and has_more: whether older ones exist.
 * STORE_INVALID: before is not a message of this session. */
enum store_rc store_session_get(struct store *st, const char *user_id, const char *session_id,
    int limit, const char *before, char **session_json);

enum store_rc store_session_rename(struct store *st, const char *user_id, const char *session_id,
    const char *title, char **session_json);

enum store_rc store_session_delete(struct store *st, const char *user_id, const char *session_id);

/* --- one chat turn (the engine's view) --- */

struct store_turn {
	char   *reply_id;        /* the assistant message, inserted as 'streaming' */
	char   *user_message_id; /* NULL when answering a stored message */
	char   *history_json;    /* [{"role","content"},...] oldest first */
	char   *settings_json;   /* the user's overrides or NULL */
	char   *attached_reply_id; /* set instead of the above when the
	                            * Idempotency-Key names an earlier reply */
	long long slot;          /* the stream slot taken with the turn, 0: none */
};

/* A concurrent-stream slot to take in the same statement as the turn
 * (migrations/005_stream_slots.sql): holder "u:<id>" or "ip:<addr>" may
 * hold cap slots younger than max_age_s. Borrowed for the call. */
struct store_slot_ask {
	const char *holder;
	int         cap;
	int         max_age_s;
};

/* In one round trip and one commit: checks that session_id belongs to
 * user_id, takes the stream slot slot asks for (NULL: none) for worker_id,
 * stores content as a user message (unless NULL: then the last stored
 * message must be the user's), inserts the assistant placeholder (tagged
 * with idempotency_key, may be NULL, and worker_id) and returns the last
 * history rows. If idempotency_key names an earlier reply of the session,
 * nothing is inserted and turn->attached_reply_id is set (the slot is
 * taken: the replay is a stream). turn->slot: the slot taken, to give back
 * with store_turn_end or store_stream_slot_release. STORE_NOT_FOUND: no
 * such session for this owner; STORE_INVALID: content NULL and nothing to
 * answer; STORE_LIMITED: the holder has its cap of slots (nothing stored,
 * the session untouched); STORE_CONFLICT: a concurrent send with the same
 * key won (call again). Free with store_turn_free(). */
enum store_rc store_turn_begin(struct store *st, const char *user_id, const char *session_id,
    const char *content, int history, const char *idempotency_key, const char *worker_id,
    const struct store_slot_ask *slot, struct store_turn *turn);

void store_turn_free(struct store_turn *turn);

/* Appends text and the end offsets of its chunks (a SQL int array literal
 * "{3,7}") to a streaming reply. */
enum store_rc store_reply_append(struct store *st, const char *reply_id, const char *text,
    size_t len, const char *chunk_ends);

/* One reply's batch for store_reply_append_many: text (len bytes, no NUL)
 * and its chunk ends "{3,9}", all borrowed for the call. */
struct store_reply_batch {
	const char *reply_id;
	const char *text;
	size_t      len;
	const char *chunk_ends;
};

/* store_reply_append for n replies (each at most once) in one statement;
 * the rc is every one's. */
enum store_rc store_reply_append_many(struct store *st, size_t n,
    const struct store_reply_batch *batches);

/* Records the end of a reply: status complete|cancelled|interrupted|error. */
enum store_rc store_reply_finish(struct store *st, const char *reply_id, enum reply_status status,
    const char *model, long prompt_tokens, long completion_tokens, const char *error);

/* Appends end's unstored text (if any) and records its ending, in one
 * statement: applied twice, the second does nothing (the reply is no
 * longer streaming), so a retried or spooled ending never doubles text. */
enum store_rc store_reply_end(struct store *st, const struct reply_end *end);

struct store_stream_metric {
	const char *route, *user_id, *session_id, *message_id;
	enum reply_status status;
	double      ttfb_ms;         /* < 0: no first byte */
	double      duration_ms;
	long        chunks, prompt_tokens, completion_tokens;  /* < 0: unknown */
};

enum store_rc store_metric_insert(struct store *st, const struct store_stream_metric *m);

/* The end of a stream in one statement and one commit: end (NULL for a
 * stateless turn) stored as store_reply_end does, the stream's figures m
 * inserted, its stream slot given back (0: none) and, with notify, the
 * followers of end's reply told (NOTIFY chat_reply) if this ended it. All
 * or nothing: on failure the caller hands each part on by itself. */
enum store_rc store_turn_end(struct store *st, const struct reply_end *end,
    const struct store_stream_metric *m, long long slot, bool notify);

/* Requests the cancel of the session's reply in flight (NOTIFY chat_cancel).
 * STORE_NOT_FOUND: no such session for this owner; STORE_CONFLICT: no reply
 * in flight. *reply_id: the cancelled reply (free it). */
enum store_rc store_cancel(struct store *st, const char *user_id, const char *session_id,
    char **reply_id);

struct store_reply {
	char   *id;
	enum reply_status status;  /* REPLY_STREAMING until it ends */
	char   *content;
	size_t  content_len;
	char   *chunk_ends;   /* "3,9,14": byte offsets where each delta ended */
	char   *error;        /* reason code, "" if none */
	bool    stale;        /* streaming, but its worker stopped updating it */
};

/* Reads reply_id (or, if NULL, the session's latest reply) for replay.
 * Free with store_reply_free(). */
enum store_rc store_reply_read(struct store *st, const char *user_id, const char *session_id,
    const char *reply_id, int stale_after_s, struct store_reply *out);
void store_reply_free(struct store_reply *r);

/* The user's settings overrides as {"system_prompt",...} (only those set);
 * STORE_NOT_FOUND if the user never saved any. */
enum store_rc store_settings_get(struct store *st, const char *user_id, char **settings_json);

/* Applies patch_json ({"field": value|null}, known fields only: the caller
 * validates) and returns the stored overrides. */
enum store_rc store_settings_put(struct store *st, const char *user_id, const char *patch_json,
    char **settings_json);

/* The session a client names: ref NULL creates one (titled title); a UUID
 * must be an existing session of this owner (else STORE_NOT_FOUND); any
 * other string names the owner's session of that external id, created on
 * first use. Anonymous callers (user_id NULL) have no identity, so their
 * sessions are scoped by anon_scope (the client's address): two anonymous
 * clients picking the same name get two sessions, and an anonymous
 * session's UUID is found only from the address that opened it.
 * *session_id: the session's UUID (free it). */
enum store_rc store_session_resolve(struct store *st, const char *user_id, const char *ref,
    const char *title, const char *anon_scope, char **session_id);

/* Counts one request against key in a fixed window of window_s seconds:
 * *hits in the current window (this one included), *reset_s until it ends. */
/* Deletes the counters whose window ended more than window_s ago (the
 * master's periodic sweep); *deleted: how many. */
enum store_rc store_rate_sweep(struct store *st, int window_s, long *deleted);

enum store_rc store_rate_hit(struct store *st, const char *key, int window_s, int *hits,
    int *reset_s);

/* Queues a generation for the Socket.IO gateways (seed 001's
 * POST /openai/chatCompletion/stream/start): a gateway_jobs row and
 * NOTIFY gw_jobs, in one statement; one gateway claims and runs it and
 * streams the reply to the room. user_id NULL: anonymous; messages_json:
 * the validated [{"role","content"}]. *job_id: the row's id (free it). */
enum store_rc store_gateway_job_submit(struct store *st, const char *user_id, const char *room,
    const char *messages_json, char **job_id);

/* --- Socket.IO rooms (seed 001): who owns one --- */

/* Claims room for user_id unless someone owns it already; either way
 * *owner is the room's owner afterwards (free it): user_id itself, or the
 * user who claimed it first. Atomic across processes and hosts.
 * STORE_NOT_FOUND: user_id is no user (deleted meanwhile). */
enum store_rc store_room_claim(struct store *st, const char *room, const char *user_id,
    char **owner);

/* The owner of room in *owner (free it), or STORE_NOT_FOUND when nobody
 * claimed it. */
enum store_rc store_room_owner(struct store *st, const char *room, char **owner);

/* Marks the replies a dead worker was generating as interrupted (own
 * connection; for the master). Returns the count, -1 on failure. */
long store_interrupt_worker(const char *conninfo, const char *worker_id);

/* --- owners of replies in flight (migrations/009_processes.sql, core/sweep.c) --- */

/* One process that owns replies in flight, as the database knows it. */
struct store_owner {
	char      *id;           /* "host:pid" (owned by the array) */
	bool       registered;   /* it has a processes row */
	long long  proc_start;   /* the row's process start time, -1 if none */
	bool       beating;      /* heartbeat younger than stale_s */
	bool       quiet;        /* its replies and the database quiet for stale_s */
};

/* Says that process id ("host:pid", of kind "worker" or "gateway") is
 * alive, registering it on first use; replies under its id created before
 * started_s (seconds since the epoch) belong to an earlier process with the
 * same pid and are marked interrupted. */
enum store_rc store_process_beat(struct store *st, const char *id, const char *host, long pid,
    const char *kind, long long proc_start, double started_s);

/* Forgets process id (it stops). */
enum store_rc store_process_gone(struct store *st, const char *id);

/* Every owner of a 'streaming' reply: *owners (*n of them) is freed with
 * store_owners_free(). */
enum store_rc store_owners_list(struct store *st, int stale_s, struct store_owner **owners,
    size_t *n);
void store_owners_free(struct store_owner *owners, size_t n);

/* The owner of the session's reply in flight: STORE_NOT_FOUND when none
 * (free out->id). */
enum store_rc store_reply_owner(struct store *st, const char *user_id, const char *session_id,
    int stale_s, struct store_owner *out);

/* Marks every 'streaming' reply of the n owners ids interrupted
 * ('worker_died'), frees their stream slots and forgets them; *count: the
 * replies ended. ids are borrowed. */
enum store_rc store_owners_interrupt(struct store *st, const char *const *ids, size_t n,
    long *count);

/* Marks reply_id interrupted if it is 'streaming' and untouched for
 * stale_s seconds. */
enum store_rc store_reply_interrupt_stale(struct store *st, const char *reply_id, int stale_s);

/* Blocks: LISTENs on each of the NULL-terminated channels and calls
 * on_notify(ctx, channel, payload) for each notification until *stop;
 * reconnects after failures. It also says when it starts and stops
 * hearing them: channel NULL with payload "listening" or "deaf"
 * (notifications sent in between are lost). */
void store_listen_loop(const char *conninfo, const char *const *channels,
    void (*on_notify)(void *ctx, const char *channel, const char *payload), void *ctx,
    atomic_bool *stop);

/* Tells every process that someone follows reply_id live (NOTIFY
 * chat_follow): its generator then stores it more often. */
enum store_rc store_notify_follow(struct store *st, const char *reply_id);

/* Tells the followers of reply_id, wherever they are, that more of it is
 * stored (NOTIFY chat_reply). */
enum store_rc store_notify_reply(struct store *st, const char *reply_id);

/* Deletes the chunks of replies no longer in flight (a batch that lost a
 * race with an ending from elsewhere; migrations/013_stream_statements.sql);
 * *deleted: how many. For the master, now and then. */
enum store_rc store_reply_chunks_sweep(struct store *st, long *deleted);

/* Takes one of holder's concurrent-stream slots ("u:<id>" or "ip:<addr>")
 * for worker_id, unless holder has cap slots younger than max_age_s: then
 * STORE_CONFLICT. On STORE_OK, *slot names it for store_stream_slot_release. */
enum store_rc store_stream_slot_take(struct store *st, const char *holder, const char *worker_id,
    int cap, int max_age_s, long long *slot);

/* Gives a slot back (the stream ended). */
enum store_rc store_stream_slot_release(struct store *st, long long slot);

/* The tokens (prompt + completion) user_id's streams used since midnight
 * UTC, from the daily rollup of stream_metrics, into *tokens (0 on
 * failure). */
enum store_rc store_user_tokens_today(struct store *st, const char *user_id, long long *tokens);

/* stream_metrics retention (migrations/011_write_paths.sql): creates the
 * coming days' partitions, drops those older than retention_days whole
 * UTC days; *dropped: how many. */
enum store_rc store_metrics_maintain(struct store *st, int retention_days, long *dropped);

#endif
