/* store.c: libpq connection pool, prepared statements and all SQL. */
#include "store.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "json_out.h"
#include "list_cursor.h"
#include "log.h"
#include "pgbin.h"
#include <json-c/json.h>

#define ACQUIRE_TIMEOUT_S 5

/* Every statement, prepared on each connection under its enum index. */
enum stmt {
	S_PING,
	S_USER_CREATE,
	S_USER_CREDENTIALS,
	S_USER_GET,
	S_SESSION_CREATE,
	S_SESSION_LIST,
	S_SESSION_GET,
	S_SESSION_RENAME,
	S_SESSION_DELETE,
	S_TURN_BEGIN,
	S_REPLY_APPEND,
	S_REPLY_FINISH,
	S_REPLY_END,
	S_METRIC_INSERT,
	S_CANCEL,
	S_REPLY_READ,
	S_SETTINGS_GET,
	S_SETTINGS_PUT,
	S_SESSION_OWNED,
	S_SESSION_EXTERNAL,
	S_USER_EXISTS,
	S_RATE_HIT,
	S_RATE_SWEEP,
	S_GATEWAY_JOB,
	S_NOTIFY_FOLLOW,
	S_NOTIFY_REPLY,
	S_REPLY_APPEND_MANY,
	S_SLOT_TAKE,
	S_SLOT_RELEASE,
	S_TOKENS_TODAY,
	S_ROOM_CLAIM,
	S_ROOM_OWNER,
	S_SESSION_OWNED_ANON,
	S_SESSION_CREATE_ANON,
	S_PROCESS_BEAT,
	S_PROCESS_GONE,
	S_OWNERS,
	S_INTERRUPT_OWNERS,
	S_REPLY_OWNER,
	S_REPLY_INTERRUPT_STALE,
	S_SESSION_LIST_AFTER,
	S_SESSION_SEARCH,
	S_SESSION_EXTERNAL_ANON,
	S_METRICS_MAINTAIN,
	S_TURN_END,
	S_CHUNKS_SWEEP,
	S_OWNER_QUIET,
	S_COUNT
};

/* A session-list row, fetched in binary (store_list_json): uuids and
 * timestamps are written as text in C (core/pgbin.c), which costs the
 * database far less than uuid_out and to_char (iso_ts) on every row;
 * updated_at also gives the cursor's microseconds. */
#define LIST_COLUMNS "s.id, s.user_id, s.title, s.created_at, s.updated_at"
/* A cursor's instant: microseconds since the epoch, exactly. */
#define CURSOR_TS(p) "(timestamptz 'epoch' + " p "::bigint * interval '1 microsecond')"

#define SESSION_JSON \
	"jsonb_build_object('id', s.id, 'user_id', s.user_id, 'title', s.title, " \
	"'created_at', iso_ts(s.created_at), 'updated_at', iso_ts(s.updated_at))"

static const char *const stmt_sql[S_COUNT] = {
	[S_PING] = "SELECT 1",
	[S_USER_CREATE] =
	    "INSERT INTO users (username, email, password_hash) VALUES ($1, $2, $3) "
	    "RETURNING jsonb_build_object('id', id, 'username', username, 'email', email, "
	    "'created_at', iso_ts(created_at))::text",
	[S_USER_CREDENTIALS] =
	    "SELECT id::text, password_hash FROM users WHERE lower(username) = lower($1)",
	[S_USER_GET] =
	    "SELECT jsonb_build_object('id', id, 'username', username, 'email', email, "
	    "'created_at', iso_ts(created_at))::text FROM users WHERE id = $1",
	[S_SESSION_CREATE] =
	    "WITH s AS (INSERT INTO chat_sessions (user_id, title) "
	    "           VALUES ($1::uuid, coalesce($2::text, 'New chat')) RETURNING *), "
	    "     m AS (INSERT INTO messages (session_id, role, content) "
	    "           SELECT id, 'user', $3::text FROM s WHERE $3::text IS NOT NULL) "
	    "SELECT " SESSION_JSON "::text FROM s",
	/* The list is the hottest read. One row more than asked tells
	 * whether there are more. Columns are qualified: a bare "id" in ORDER
	 * BY would bind to the output column and sort off the index.
	 * The user (and the cursor's instant) are behind sub-selects: with
	 * their values in sight, PostgreSQL made a custom plan on every
	 * execution, because for a user the statistics do not single out
	 * (nearly every user) one looked cheaper than the generic plan;
	 * planning then took longer than running (pg_stat_statements: 20 us
	 * of planning to 15 us of execution). Hidden, both plans cost the
	 * same and the generic one is kept after five: the same index scan
	 * of (user_id, updated_at DESC, id) for every user. */
	[S_SESSION_LIST] =
	    "SELECT " LIST_COLUMNS " FROM chat_sessions s WHERE s.user_id = (SELECT $1::uuid) "
	    "ORDER BY s.updated_at DESC, s.id LIMIT $2::int + 1 OFFSET $3::int",
	/* Keyset: the rows after ($3 µs, $4) in (updated_at DESC, id) order.
	 * "updated_at <= $3" is the index condition that starts the scan at
	 * the cursor; the OR only drops the few rows of the same instant. */
	[S_SESSION_LIST_AFTER] =
	    "SELECT " LIST_COLUMNS " FROM chat_sessions s WHERE s.user_id = (SELECT $1::uuid) "
	    "  AND s.updated_at <= (SELECT " CURSOR_TS("$3") ") "
	    "  AND (s.updated_at < (SELECT " CURSOR_TS("$3") ") OR s.id > $4::uuid) "
	    "ORDER BY s.updated_at DESC, s.id LIMIT $2::int + 1",
	/* The same, among the sessions whose title or message text has every
	 * word of $5 (migrations/010_read_paths.sql: both lookups are GIN
	 * index scans of this user's entries). */
	[S_SESSION_SEARCH] =
	    "WITH q AS (SELECT websearch_to_tsquery('simple', $5::text) AS q), "
	    "  hit AS (SELECT d.session_id FROM search_docs d, q WHERE d.user_id = $1::uuid AND d.tsv @@ q.q "
	    "          UNION SELECT t.id FROM chat_sessions t, q WHERE t.user_id = $1::uuid "
	    "          AND search_doc_tsv(t.title) @@ q.q) "
	    "SELECT " LIST_COLUMNS " FROM chat_sessions s WHERE s.user_id = $1::uuid "
	    "  AND s.id IN (SELECT session_id FROM hit) "
	    "  AND s.updated_at <= " CURSOR_TS("$3") " "
	    "  AND (s.updated_at < " CURSOR_TS("$3") " OR s.id > $4::uuid) "
	    "ORDER BY s.updated_at DESC, s.id LIMIT $2::int + 1",
	/* The last $3 messages before message $4 (all when NULL), one more to
	 * tell whether older ones exist; the seq bound is an index condition
	 * of messages_session_seq. The second column says that $4 is not a
	 * message of this session. */
	[S_SESSION_GET] =
	    "WITH b AS (SELECT m.seq FROM messages m WHERE m.id = $4::uuid AND m.session_id = $2::uuid), "
	    "  page AS (SELECT m.id, m.role, m.content, m.status, m.model, m.error, m.created_at, m.seq "
	    "           FROM messages m WHERE m.session_id = $2::uuid "
	    "           AND m.seq < coalesce((SELECT seq FROM b), 9223372036854775807) "
	    "           ORDER BY m.seq DESC LIMIT $3::int + 1) "
	    "SELECT jsonb_build_object('id', s.id, 'user_id', s.user_id, 'title', s.title, "
	    "  'created_at', iso_ts(s.created_at), 'updated_at', iso_ts(s.updated_at), "
	    "  'messages', (SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, "
	    "     'role', p.role, 'content', reply_text(p.id, p.status, p.content), 'status', p.status, 'model', p.model, "
	    "     'error', p.error, 'created_at', iso_ts(p.created_at)) ORDER BY p.seq), '[]') "
	    "     FROM (SELECT * FROM page ORDER BY seq DESC LIMIT $3::int) p), "
	    "  'has_more', (SELECT count(*) FROM page) > $3::int)::text, "
	    "  ($4::uuid IS NOT NULL AND NOT EXISTS (SELECT 1 FROM b))::int "
	    "FROM chat_sessions s WHERE s.id = $2::uuid AND s.user_id = $1::uuid",
	[S_SESSION_RENAME] =
	    "UPDATE chat_sessions s SET title = $3, updated_at = now() "
	    "WHERE s.id = $2 AND s.user_id IS NOT DISTINCT FROM $1 "
	    "RETURNING " SESSION_JSON "::text",
	[S_SESSION_DELETE] =
	    "DELETE FROM chat_sessions WHERE id = $2 AND user_id IS NOT DISTINCT FROM $1",
	/* The history snapshot does not see the rows this statement inserts,
	 * so it holds exactly the messages before the new one. A send whose
	 * Idempotency-Key is known inserts nothing and names the earlier reply.
	 * The stream slot ($7: its holder, NULL: none) is taken here too, once
	 * the session is known to be the caller's and to have something to
	 * run: one commit admits the stream; at the cap nothing is written. */
	[S_TURN_BEGIN] =
	    "WITH sess AS (SELECT id FROM chat_sessions "
	    "              WHERE id = $2::uuid AND user_id IS NOT DISTINCT FROM $1::uuid), "
	    /* A reply that failed does not hold its key: a retry generates anew. */
	    "  prior AS (SELECT m.id FROM messages m WHERE $5::text IS NOT NULL "
	    "            AND m.session_id = (SELECT id FROM sess) AND m.idempotency_key = $5 "
	    "            AND m.status <> 'error'), "
	    "  last AS (SELECT role FROM messages WHERE session_id = (SELECT id FROM sess) "
	    "           ORDER BY seq DESC LIMIT 1), "
	    "  runs AS (SELECT id FROM sess WHERE EXISTS (SELECT 1 FROM prior) "
	    "           OR $3::text IS NOT NULL OR (SELECT role FROM last) = 'user'), "
	    "  slot AS (SELECT CASE WHEN $7::text IS NULL THEN 0 "
	    "           ELSE stream_slot_take($7::text, $6::text, $8::int, $9::int) END AS id FROM runs), "
	    "  s AS (UPDATE chat_sessions SET updated_at = now() WHERE id = (SELECT id FROM runs) "
	    "        AND (SELECT id FROM slot) IS NOT NULL RETURNING id), "
	    "  ok AS (SELECT id FROM s WHERE NOT EXISTS (SELECT 1 FROM prior)), "
	    "  u AS (INSERT INTO messages (session_id, role, content) "
	    "        SELECT id, 'user', $3::text FROM ok WHERE $3::text IS NOT NULL RETURNING id), "
	    /* Reading u makes the user's row take its seq before the reply's.
	     * The reply is created after the message it answers: at least 1 ms
	     * later, so the two never show one created_at (milliseconds). */
	    "  a AS (INSERT INTO messages (session_id, role, status, idempotency_key, worker, created_at) "
	    "        SELECT ok.id, 'assistant', 'streaming', $5::text, $6::text, "
	    "               greatest(clock_timestamp(), now() + interval '1 millisecond') "
	    "        FROM ok LEFT JOIN u ON true RETURNING id), "
	    "  h AS (SELECT role, content, seq FROM (SELECT role, seq, "
	    "          reply_text(id, status, content) AS content FROM messages "
	    "          WHERE session_id = (SELECT id FROM ok) AND status <> 'error') x "
	    "        WHERE content <> '' ORDER BY seq DESC LIMIT $4::int) "
	    "SELECT (SELECT id FROM sess)::text, (SELECT id FROM a)::text, (SELECT id FROM u)::text, "
	    "  (SELECT coalesce(jsonb_agg(jsonb_build_object('role', role, 'content', content) "
	    "     ORDER BY seq), '[]') FROM h)::text, "
	    "  (SELECT jsonb_build_object('system_prompt', system_prompt, 'model', model, "
	    "     'temperature', temperature) FROM user_settings WHERE user_id = $1::uuid)::text, "
	    "  (SELECT id FROM prior)::text, (SELECT id FROM slot)::text, "
	    "  EXISTS (SELECT 1 FROM runs)::int",
	/* A batch is a row of reply_chunks, not a new version of the reply's
	 * row (migrations/011_write_paths.sql), and nothing more: no lock on
	 * the reply's row (migrations/013_stream_statements.sql). A batch
	 * that comes after the end finds the reply no longer streaming and is
	 * dropped; its generator never ends a reply with a batch in flight. */
	[S_REPLY_APPEND] =
	    "INSERT INTO reply_chunks (message_id, content, chunk_ends) "
	    "SELECT m.id, $2::text, $3::int[] FROM messages m "
	    "WHERE m.id = $1::uuid AND m.status = 'streaming'",
	[S_REPLY_FINISH] =
	    "UPDATE messages SET status = $2, model = $3, prompt_tokens = $4, "
	    "  completion_tokens = $5, error = $6, updated_at = now() "
	    "WHERE id = $1 AND status = 'streaming'",
	[S_REPLY_END] =
	    "UPDATE messages SET content = content || $2, chunk_ends = chunk_ends || $3::int[], "
	    "  status = $4, model = $5, prompt_tokens = $6, completion_tokens = $7, error = $8, "
	    "  updated_at = now() WHERE id = $1 AND status = 'streaming'",
	/* Marks the session's reply in flight and tells every process. */
	[S_CANCEL] =
	    "WITH r AS (UPDATE messages m SET cancel_requested = true FROM chat_sessions s "
	    "           WHERE m.session_id = s.id AND s.id = $2 AND s.user_id IS NOT DISTINCT FROM $1 "
	    "           AND m.role = 'assistant' AND m.status = 'streaming' RETURNING m.id) "
	    "SELECT (SELECT count(*) FROM chat_sessions WHERE id = $2 "
	    "          AND user_id IS NOT DISTINCT FROM $1)::int, "
	    "  (SELECT min(id::text) FROM r), "
	    "  (SELECT count(*) FROM (SELECT pg_notify('chat_cancel', id::text) FROM r) n)::int",
	/* A reply for replay: the named one, or the session's latest, with
	 * the chunks of one still streaming. A 'streaming' reply untouched
	 * for $4 seconds lost its worker. */
	[S_REPLY_READ] =
	    "SELECT m.id::text, m.status, reply_text(m.id, m.status, m.content), "
	    "  array_to_string(reply_chunk_ends(m.id, m.status, m.chunk_ends), ','), "
	    "  coalesce(m.error, ''), "
	    "  (m.status = 'streaming' AND reply_touched_at(m.id, m.status, m.updated_at) "
	    "   < now() - make_interval(secs => $4::int))::int "
	    "FROM messages m JOIN chat_sessions s ON s.id = m.session_id "
	    "WHERE s.id = $2 AND s.user_id IS NOT DISTINCT FROM $1 AND m.role = 'assistant' "
	    "  AND ($3::uuid IS NULL OR m.id = $3::uuid) "
	    "ORDER BY m.seq DESC LIMIT 1",
	[S_SETTINGS_GET] =
	    "SELECT jsonb_strip_nulls(jsonb_build_object('system_prompt', system_prompt, "
	    "  'model', model, 'temperature', temperature, 'realtime_model', realtime_model, "
	    "  'voice', voice))::text FROM user_settings WHERE user_id = $1::uuid",
	/* $2 holds only the fields to change; a JSON null resets one. */
	[S_SETTINGS_PUT] =
	    "INSERT INTO user_settings AS us (user_id, system_prompt, model, temperature, "
	    "  realtime_model, voice) "
	    "SELECT $1::uuid, p->>'system_prompt', p->>'model', (p->>'temperature')::float8, "
	    "  p->>'realtime_model', p->>'voice' FROM (SELECT $2::jsonb AS p) x "
	    "ON CONFLICT (user_id) DO UPDATE SET "
	    "  system_prompt = CASE WHEN $2::jsonb ? 'system_prompt' THEN EXCLUDED.system_prompt ELSE us.system_prompt END, "
	    "  model = CASE WHEN $2::jsonb ? 'model' THEN EXCLUDED.model ELSE us.model END, "
	    "  temperature = CASE WHEN $2::jsonb ? 'temperature' THEN EXCLUDED.temperature ELSE us.temperature END, "
	    "  realtime_model = CASE WHEN $2::jsonb ? 'realtime_model' THEN EXCLUDED.realtime_model ELSE us.realtime_model END, "
	    "  voice = CASE WHEN $2::jsonb ? 'voice' THEN EXCLUDED.voice ELSE us.voice END, "
	    "  updated_at = now() "
	    "RETURNING jsonb_strip_nulls(jsonb_build_object('system_prompt', system_prompt, "
	    "  'model', model, 'temperature', temperature, 'realtime_model', realtime_model, "
	    "  'voice', voice))::text",
	[S_SESSION_OWNED] =
	    "SELECT id::text FROM chat_sessions WHERE id = $2::uuid AND user_id IS NOT DISTINCT FROM $1::uuid",
	/* Finds or creates the owner's session named by a client string.
	 * "user_id = $1" (and "IS NULL" below), not IS NOT DISTINCT FROM: both
	 * columns of chat_sessions_external are then index conditions. */
	[S_SESSION_EXTERNAL] =
	    "WITH f AS (SELECT id FROM chat_sessions WHERE user_id = $1::uuid "
	    "           AND external_id = $2::text), "
	    "  i AS (INSERT INTO chat_sessions (user_id, title, external_id) "
	    "        SELECT $1::uuid, $3::text, $2::text WHERE NOT EXISTS (SELECT 1 FROM f) "
	    "        ON CONFLICT DO NOTHING RETURNING id) "
	    "SELECT id::text FROM f UNION ALL SELECT id::text FROM i",
	/* The same for anonymous callers ($1: "<address>/<name>", $3: the address). */
	[S_SESSION_EXTERNAL_ANON] =
	    "WITH f AS (SELECT id FROM chat_sessions WHERE user_id IS NULL "
	    "           AND external_id = $1::text), "
	    "  i AS (INSERT INTO chat_sessions (user_id, title, external_id, anon_scope) "
	    "        SELECT NULL, $2::text, $1::text, $3::text WHERE NOT EXISTS (SELECT 1 FROM f) "
	    "        ON CONFLICT DO NOTHING RETURNING id) "
	    "SELECT id::text FROM f UNION ALL SELECT id::text FROM i",
	/* One atomic step per request: a new window, or one more hit.
	 * rate_limits is UNLOGGED: the statement writes no WAL, so its commit
	 * never waits for a flush (PostgreSQL commits such a transaction
	 * asynchronously by itself: 2,000 hits, one WAL sync). */
	[S_RATE_HIT] =
	    "INSERT INTO rate_limits AS rl (key, window_start, hits) VALUES ($1, now(), 1) "
	    "ON CONFLICT (key) DO UPDATE SET "
	    "  hits = CASE WHEN rl.window_start + make_interval(secs => $2::int) <= now() "
	    "              THEN 1 ELSE rl.hits + 1 END, "
	    "  window_start = CASE WHEN rl.window_start + make_interval(secs => $2::int) <= now() "
	    "              THEN now() ELSE rl.window_start END "
	    "RETURNING hits, least($2::int, ceil(extract(epoch FROM rl.window_start "
	    "  + make_interval(secs => $2::int) - clock_timestamp())))::int",
	[S_RATE_SWEEP] =
	    "DELETE FROM rate_limits WHERE window_start < now() - make_interval(secs => $1::int)",
	[S_NOTIFY_FOLLOW] = "SELECT pg_notify('chat_follow', $1::text)",
	[S_NOTIFY_REPLY] = "SELECT pg_notify('chat_reply', $1::text)",
	/* Many replies' batches in one statement and one transaction. Its
	 * commit does not wait for the WAL flush: a database crash may lose
	 * the last batches of replies still streaming, which a later
	 * synchronous commit (the reply's finish, any other write) would have
	 * flushed with it; each reply's end stays durable. */
	[S_REPLY_APPEND_MANY] =
	    "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) "
	    "INSERT INTO reply_chunks (message_id, content, chunk_ends) "
	    "SELECT m.id, v.t, v.e::int[] "
	    "FROM async, unnest($1::uuid[], $2::text[], $3::text[]) AS v(id, t, e) "
	    "JOIN messages m ON m.id = v.id WHERE m.status = 'streaming'",
	[S_SLOT_TAKE] = "SELECT stream_slot_take($1, $2, $3::int, $4::int)",
	[S_SLOT_RELEASE] = "DELETE FROM stream_slots WHERE id = $1::bigint",
	/* The daily token budget: the user's row of today (UTC) in the rollup
	 * that every stream_metrics row adds to (migrations/011_write_paths.sql),
	 * one index lookup whatever the session's TimeZone. */
	[S_TOKENS_TODAY] =
	    "SELECT coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0) "
	    "FROM usage_daily WHERE user_id = $1::uuid "
	    "AND day = (now() AT TIME ZONE 'UTC')::date",
	[S_USER_EXISTS] = "SELECT 1 FROM users WHERE id = $1::uuid",
	/* A process says it is alive (migrations/009_processes.sql). Replies
	 * under its id created before it started belong to an earlier process
	 * of the same pid: they can never end now. */
	[S_PROCESS_BEAT] =
	    "WITH p AS (INSERT INTO processes AS p (id, host, pid, kind, proc_start, started_at) "
	    "           VALUES ($1, $2, $3::int, $4, $5::bigint, to_timestamp($6::float8)) "
	    "           ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid, "
	    "             kind = EXCLUDED.kind, proc_start = EXCLUDED.proc_start, "
	    "             started_at = EXCLUDED.started_at, heartbeat_at = now() RETURNING 1) "
	    "UPDATE messages SET status = 'interrupted', error = 'worker_died', updated_at = now() "
	    "FROM p WHERE id IN (SELECT message_id FROM replies_in_flight) "
	    "  AND worker = $1 AND status = 'streaming' AND created_at < to_timestamp($6::float8)",
	[S_PROCESS_GONE] = "DELETE FROM processes WHERE id = $1",
	/* The owners of replies in flight, with what is known of them: a row,
	 * its process start, a fresh heartbeat. Each reply in flight is one
	 * lookup by primary key (a scalar subquery, evaluated once per row in
	 * a materialized CTE, never a scan of messages), so the cost follows
	 * the replies in flight, not the table. Whether an owner is quiet is asked apart (S_OWNER_QUIET),
	 * of the owners whose heartbeat stopped only: reading when every reply
	 * of every live owner was last written, every 5 s, cost more than the
	 * rest of the sweep. */
	[S_OWNERS] =
	    "WITH r AS MATERIALIZED (SELECT (SELECT m.worker FROM messages m "
	    "           WHERE m.id = f.message_id AND m.status = 'streaming') AS w "
	    "           FROM replies_in_flight f), "
	    "  o AS (SELECT w FROM r WHERE w IS NOT NULL GROUP BY w) "
	    "SELECT o.w, (p.id IS NOT NULL)::int, coalesce(p.proc_start, -1), "
	    "  coalesce(p.heartbeat_at > now() - make_interval(secs => $1::int), false)::int "
	    "FROM o LEFT JOIN processes p ON p.id = o.w",
	/* Whether owner $1's replies and the database itself have been quiet
	 * for $2 seconds (a database just back has heard nobody yet). */
	[S_OWNER_QUIET] =
	    "SELECT (pg_postmaster_start_time() < now() - make_interval(secs => $2::int) "
	    "  AND NOT EXISTS (SELECT 1 FROM replies_in_flight f JOIN messages m ON m.id = f.message_id "
	    "    WHERE m.worker = $1 AND m.status = 'streaming' "
	    "    AND reply_touched_at(m.id, m.status, m.updated_at) "
	    "        >= now() - make_interval(secs => $2::int)))::int",
	/* Ends the replies of owners known dead, frees their stream slots and
	 * forgets them, in one statement. */
	[S_INTERRUPT_OWNERS] =
	    "WITH m AS (UPDATE messages SET status = 'interrupted', error = 'worker_died', "
	    "             updated_at = now() "
	    "           WHERE id IN (SELECT message_id FROM replies_in_flight) "
	    "             AND status = 'streaming' AND worker = ANY($1::text[]) RETURNING 1), "
	    "  s AS (DELETE FROM stream_slots WHERE worker = ANY($1::text[])), "
	    "  p AS (DELETE FROM processes WHERE id = ANY($1::text[])) "
	    "SELECT count(*)::int FROM m",
	/* The owner of the session's reply in flight, as S_OWNERS sees it. */
	[S_REPLY_OWNER] =
	    "SELECT m.worker, (p.id IS NOT NULL)::int, coalesce(p.proc_start, -1), "
	    "  coalesce(p.heartbeat_at > now() - make_interval(secs => $3::int), false)::int, "
	    "  (reply_touched_at(m.id, m.status, m.updated_at) < now() - make_interval(secs => $3::int) "
	    "   AND pg_postmaster_start_time() < now() - make_interval(secs => $3::int))::int "
	    "FROM messages m JOIN chat_sessions s ON s.id = m.session_id "
	    "LEFT JOIN processes p ON p.id = m.worker "
	    "WHERE s.id = $2 AND s.user_id IS NOT DISTINCT FROM $1 AND m.role = 'assistant' "
	    "  AND m.status = 'streaming' AND m.worker IS NOT NULL ORDER BY m.seq DESC LIMIT 1",
	/* A resume found the reply untouched past every timeout of its
	 * generator: whatever happened to it, it will not end by itself. */
	[S_REPLY_INTERRUPT_STALE] =
	    "UPDATE messages SET status = 'interrupted', error = 'worker_died', updated_at = now() "
	    "WHERE id = $1 AND status = 'streaming' "
	    "  AND reply_touched_at(id, status, updated_at) < now() - make_interval(secs => $2::int)",
	[S_METRICS_MAINTAIN] = "SELECT stream_metrics_maintain($1::int)",
	[S_CHUNKS_SWEEP] = "SELECT reply_chunks_sweep()",
	/* A stream's end, one commit: the reply's unstored tail and ending
	 * (as S_REPLY_END; $1 NULL for a stateless turn), its figures, its
	 * stream slot back, and its followers told once the end is theirs to
	 * read (NOTIFY is delivered at commit). Without a reply the commit
	 * does not wait for the WAL flush, as S_METRIC_INSERT. */
	[S_TURN_END] =
	    "WITH async AS (SELECT set_config('synchronous_commit', "
	    "                 CASE WHEN $1::uuid IS NULL THEN 'off' ELSE 'on' END, true)), "
	    "  e AS (UPDATE messages SET content = content || $2::text, "
	    "          chunk_ends = chunk_ends || $3::int[], status = $4::text, model = $5::text, "
	    "          prompt_tokens = $6::int, completion_tokens = $7::int, error = $8::text, "
	    "          updated_at = now() WHERE id = $1::uuid AND status = 'streaming' RETURNING id), "
	    "  m AS (INSERT INTO stream_metrics (route, user_id, session_id, message_id, status, "
	    "          ttfb_ms, duration_ms, chunks, prompt_tokens, completion_tokens) "
	    "        SELECT $9::text, $10::uuid, $11::uuid, $12::uuid, $4::text, $13::float8, "
	    "          $14::float8, $15::int, $6::int, $7::int FROM async), "
	    "  s AS (DELETE FROM stream_slots WHERE id = $16::bigint) "
	    "SELECT (SELECT count(*) FROM e)::int, "
	    "  (SELECT count(pg_notify('chat_reply', e.id::text)) FROM e WHERE $17::bool)::int",
	/* A generation for the Socket.IO gateways (migrations/004_gateway.sql):
	 * the row and its NOTIFY in one statement. */
	[S_GATEWAY_JOB] =
	    "WITH j AS (INSERT INTO gateway_jobs (room, user_id, messages) "
	    "           VALUES ($1, $2::uuid, $3::jsonb) RETURNING id) "
	    "SELECT id::text, pg_notify('gw_jobs', id::text) FROM j",
	/* A room's owner (migrations/008_ownership.sql): the first user to
	 * claim it, atomically; later claims return whoever holds it, and
	 * only the owner's own use counts as use. */
	[S_ROOM_CLAIM] =
	    "INSERT INTO room_owners AS o (room, user_id) VALUES ($1, $2::uuid) "
	    "ON CONFLICT (room) DO UPDATE SET used_at = CASE WHEN o.user_id = EXCLUDED.user_id "
	    "  THEN now() ELSE o.used_at END "
	    "RETURNING o.user_id::text",
	[S_ROOM_OWNER] = "SELECT user_id::text FROM room_owners WHERE room = $1",
	/* An anonymous session by UUID: only from the address that opened it. */
	[S_SESSION_OWNED_ANON] =
	    "SELECT id::text FROM chat_sessions WHERE id = $1::uuid AND user_id IS NULL "
	    "  AND anon_scope = $2::text",
	[S_SESSION_CREATE_ANON] =
	    "INSERT INTO chat_sessions (user_id, title, anon_scope) "
	    "VALUES (NULL, coalesce($1::text, 'New chat'), $2::text) RETURNING id::text",
	/* A stream's figures commit without waiting for the WAL flush: a
	 * database crash may lose the last few, never a reply. */
	[S_METRIC_INSERT] =
	    "WITH async AS (SELECT set_config('synchronous_commit', 'off', true)) "
	    "INSERT INTO stream_metrics (route, user_id, session_id, message_id, status, ttfb_ms, "
	    "  duration_ms, chunks, prompt_tokens, completion_tokens) "
	    "SELECT $1::text, $2::uuid, $3::uuid, $4::uuid, $5::text, $6::float8, $7::float8, $8::int, "
	    "  $9::int, $10::int FROM async",
};

/* database_pooled: connections go through a transaction-mode pooler
 * (PgBouncer < 1.21 keeps no prepared statement from one transaction to the
 * next), so each query is sent with its text, as an unnamed statement. */
static atomic_bool store_pooled;

void
store_set_pooled(bool pooled)
{
	atomic_store(&store_pooled, pooled);
}

struct store_conn {
	PGconn *pg;        /* NULL until first used, or after a failure */
};

struct store {
	const char        *app_name;   /* application_name of its connections */
	pthread_mutex_t    mu;
	pthread_cond_t     cv;
	char              *conninfo;
	int                size;
	int                nfree;
	int               *free_idx;   /* stack of free connection indexes */
	struct store_conn *conns;
};

struct store *
store_new(const char *conninfo, int size)
{
	return store_new_named(conninfo, size, "chatd");
}

struct store *
store_new_named(const char *conninfo, int size, const char *app_name)
{
	struct store *st;

	if ((st = calloc(1, sizeof(*st))) == NULL)
		return NULL;
	st->app_name = app_name;
	st->size = size;
	st->conninfo = strdup(conninfo);
	st->conns = calloc((size_t)size, sizeof(*st->conns));
	st->free_idx = calloc((size_t)size, sizeof(*st->free_idx));
	if (st->conninfo == NULL || st->conns == NULL || st->free_idx == NULL)
		goto failed;
	for (int i = 0; i < size; i++)
		st->free_idx[i] = i;
	st->nfree = size;
	if (pthread_mutex_init(&st->mu, NULL) != 0)
		goto failed;
	if (clock_cond_init(&st->cv) != 0) {
		pthread_mutex_destroy(&st->mu);
		goto failed;
	}
	return st;
failed:
	free(st->conninfo);
	free(st->conns);
	free(st->free_idx);
	free(st);
	return NULL;
}

void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < st->size; i++)
		if (st->conns[i].pg != NULL)
			PQfinish(st->conns[i].pg);
	pthread_mutex_destroy(&st->mu);
	pthread_cond_destroy(&st->cv);
	free(st->conninfo);
	free(st->conns);
	free(st->free_idx);
	free(st);
}

int
store_http_status(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:          return 200;
	case STORE_NOT_FOUND:   return 404;
	case STORE_CONFLICT:    return 409;
	case STORE_INVALID:     return 400;
	case STORE_UNAVAILABLE: return 503;
	case STORE_ERROR:       return 500;
	case STORE_LIMITED:     return 429;
	}
	return 500;
}

/* Opens the connection and prepares every statement. */
static bool
store_connect(struct store *st, struct store_conn *c)
{
	static const char *const keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *values[] = { st->conninfo, "5", st->app_name, NULL };
	char name[16];

	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = PQconnectdbParams(keys, values, 1);
	if (c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) {
		log_warn("database connection failed: %s",
		    c->pg != NULL ? PQerrorMessage(c->pg) : "out of memory");
		goto failed;
	}
	for (int i = 0; !atomic_load(&store_pooled) && i < S_COUNT; i++) {
		PGresult *res;
		bool ok;

		(void)snprintf(name, sizeof(name), "s%d", i);
		res = PQprepare(c->pg, name, stmt_sql[i], 0, NULL);
		ok = PQresultStatus(res) == PGRES_COMMAND_OK;
		if (!ok)
			log_error("prepare s%d: %s", i, PQresultErrorMessage(res));
		PQclear(res);
		if (!ok)
			goto failed;
	}
	return true;
failed:
	if (c->pg != NULL)
		PQfinish(c->pg);
	c->pg = NULL;
	return false;
}

/* Takes a free connection, waiting up to ACQUIRE_TIMEOUT_S. */
static struct store_conn *
store_acquire(struct store *st)
{
	struct timespec deadline = clock_deadline((int64_t)ACQUIRE_TIMEOUT_S * 1000);
	struct store_conn *c;
	int rc = 0;

	pthread_mutex_lock(&st->mu);
	while (st->nfree == 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&st->cv, &st->mu, &deadline);
	if (st->nfree == 0) {
		pthread_mutex_unlock(&st->mu);
		log_warn("database pool exhausted (%d connections)", st->size);
		return NULL;
	}
	c = &st->conns[st->free_idx[--st->nfree]];
	pthread_mutex_unlock(&st->mu);
	if ((c->pg == NULL || PQstatus(c->pg) != CONNECTION_OK) && !store_connect(st, c)) {
		pthread_mutex_lock(&st->mu);
		st->free_idx[st->nfree++] = (int)(c - st->conns);
		pthread_cond_signal(&st->cv);
		pthread_mutex_unlock(&st->mu);
		return NULL;
	}
	return c;
}

static void
store_release(struct store *st, struct store_conn *c)
{
	pthread_mutex_lock(&st->mu);
	st->free_idx[st->nfree++] = (int)(c - st->conns);
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

static enum store_rc
store_error_rc(const PGresult *res)
{
	const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);

	if (state == NULL)
		return STORE_UNAVAILABLE;  /* no server answer: the connection broke */
	if (strcmp(state, "23505") == 0)
		return STORE_CONFLICT;
	if (strcmp(state, "23503") == 0 || strcmp(state, "22P02") == 0)
		return STORE_NOT_FOUND;  /* missing referenced row, or a malformed id */
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0)
		return STORE_INVALID;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57", 2) == 0 ||
	    strncmp(state, "53", 2) == 0)
		return STORE_UNAVAILABLE;  /* connection, shutdown, resources */
	return STORE_ERROR;
}

/* Runs a prepared statement, its result in text (result_format 0) or in
 * binary (1). On success *res holds the result (PQclear it). A connection
 * found broken is reopened and the statement retried once: the failed
 * attempt cannot have committed without answering. */
static enum store_rc
store_exec_as(struct store *st, enum stmt s, int n, const char *const *params, int result_format,
    PGresult **res)
{
	struct store_conn *c;
	enum store_rc rc = STORE_ERROR;
	char name[16];

	*res = NULL;
	if ((c = store_acquire(st)) == NULL)
		return STORE_UNAVAILABLE;
	(void)snprintf(name, sizeof(name), "s%d", (int)s);
	for (int attempt = 0; attempt < 2; attempt++) {
		ExecStatusType es;

		*res = atomic_load(&store_pooled)
		    ? PQexecParams(c->pg, stmt_sql[s], n, NULL, params, NULL, NULL, result_format)
		    : PQexecPrepared(c->pg, name, n, params, NULL, NULL, result_format);
		es = PQresultStatus(*res);
		if (es == PGRES_TUPLES_OK || es == PGRES_COMMAND_OK) {
			rc = STORE_OK;
			break;
		}
		rc = *res != NULL ? store_error_rc(*res) : STORE_UNAVAILABLE;
		if (rc == STORE_ERROR || rc == STORE_UNAVAILABLE)
			log_error("query s%d failed: %s", (int)s,
			    *res != NULL ? PQresultErrorMessage(*res) : PQerrorMessage(c->pg));
		PQclear(*res);
		*res = NULL;
		if (PQstatus(c->pg) == CONNECTION_OK || attempt > 0 || !store_connect(st, c))
			break;
	}
	if (rc == STORE_UNAVAILABLE && c->pg != NULL && PQstatus(c->pg) != CONNECTION_OK) {
		PQfinish(c->pg);
		c->pg = NULL;
	}
	store_release(st, c);
	return rc;
}

/* store_exec_as with the result in text, as most statements want it. */
static enum store_rc
store_exec(struct store *st, enum stmt s, int n, const char *const *params, PGresult **res)
{
	return store_exec_as(st, s, n, params, 0, res);
}

/* Runs s and reads the first column of its first row as a number (a count
 * a maintenance function returns); 0 when it is NULL or absent. */
static enum store_rc
exec_first_long(struct store *st, enum stmt s, int n, const char *const *params, long *out)
{
	PGresult *res;
	enum store_rc rc;

	*out = 0;
	if ((rc = store_exec(st, s, n, params, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		*out = strtol(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

/* Copies field (row, col) or NULL when SQL NULL. */
static enum store_rc
store_dup(const PGresult *res, int row, int col, char **out)
{
	*out = NULL;
	if (PQntuples(res) <= row || PQgetisnull(res, row, col))
		return STORE_NOT_FOUND;
	if ((*out = strdup(PQgetvalue(res, row, col))) == NULL)
		return STORE_ERROR;
	return STORE_OK;
}

/* Runs s and returns the first column of its first row (JSON text). */
static enum store_rc
store_query_text(struct store *st, enum stmt s, int n, const char *const *params, char **out)
{
	PGresult *res;
	enum store_rc rc;

	*out = NULL;
	if ((rc = store_exec(st, s, n, params, &res)) != STORE_OK)
		return rc;
	rc = store_dup(res, 0, 0, out);
	PQclear(res);
	return rc;
}

bool
store_ping(struct store *st)
{
	PGresult *res;
	enum store_rc rc = store_exec(st, S_PING, 0, NULL, &res);

	PQclear(res);
	return rc == STORE_OK;
}

enum store_rc
store_user_create(struct store *st, const char *username, const char *email,
    const char *password_hash, char **user_json)
{
	const char *p[] = { username, email, password_hash };

	return store_query_text(st, S_USER_CREATE, 3, p, user_json);
}

enum store_rc
store_user_credentials(struct store *st, const char *username, char **user_id,
    char **password_hash)
{
	const char *p[] = { username };
	PGresult *res;
	enum store_rc rc;

	*user_id = *password_hash = NULL;
	if ((rc = store_exec(st, S_USER_CREDENTIALS, 1, p, &res)) != STORE_OK)
		return rc;
	if ((rc = store_dup(res, 0, 0, user_id)) == STORE_OK &&
	    (rc = store_dup(res, 0, 1, password_hash)) != STORE_OK) {
		free(*user_id);
		*user_id = NULL;
	}
	PQclear(res);
	return rc;
}

enum store_rc
store_user_get(struct store *st, const char *user_id, char **user_json)
{
	const char *p[] = { user_id };

	return store_query_text(st, S_USER_GET, 1, p, user_json);
}

enum store_rc
store_session_create(struct store *st, const char *user_id, const char *title,
    const char *initial_message, char **session_json)
{
	const char *p[] = { user_id, title, initial_message };

	return store_query_text(st, S_SESSION_CREATE, 3, p, session_json);
}

/* Writes binary uuid field (row, col) of a list row as a JSON string ("" for
 * NULL, as the text column's coalesce did). */
static bool
list_put_uuid(struct buf *b, const PGresult *res, int row, int col)
{
	char id[PGBIN_UUID_TEXT];

	if (PQgetisnull(res, row, col))
		return buf_append(b, "\"\"", 2);
	return pgbin_uuid(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), id) &&
	    buf_append(b, "\"", 1) && buf_append(b, id, 36) && buf_append(b, "\"", 1);
}

/* Writes binary timestamptz field (row, col) as iso_ts() would ("" where
 * iso_ts gives NULL: an infinite time, never stored by chatd). */
static bool
list_put_ts(struct buf *b, const PGresult *res, int row, int col)
{
	char ts[PGBIN_ISO_TS_MAX];
	int64_t us;

	if (PQgetisnull(res, row, col) ||
	    !pgbin_timestamptz(PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col), &us))
		return buf_append(b, "\"\"", 2);
	pgbin_iso_ts(us, ts);
	return buf_append(b, "\"", 1) && buf_appendz(b, ts) && buf_append(b, "\"", 1);
}

/* Renders a page of session-list rows (LIST_COLUMNS, binary); the last row
 * shown gives the cursor of the next page when there is one. */
static enum store_rc
store_list_json(const PGresult *res, const struct store_list_page *pg, char **list_json)
{
	int rows = PQntuples(res), shown = rows < pg->limit ? rows : pg->limit;
	bool more = rows > pg->limit, ok;
	char cursor[LIST_CURSOR_MAX], last_id[PGBIN_UUID_TEXT];
	int64_t last_us;
	struct buf b;

	buf_init(&b, 1 << 22);
	ok = buf_printf(&b, "{\"limit\":%d,\"offset\":%d,\"has_more\":%s,\"next_cursor\":",
	    pg->limit, pg->offset, more ? "true" : "false");
	if (ok && more && shown > 0) {
		ok = pgbin_uuid(PQgetvalue(res, shown - 1, 0), (size_t)PQgetlength(res, shown - 1, 0), last_id) &&
		    pgbin_timestamptz(PQgetvalue(res, shown - 1, 4), (size_t)PQgetlength(res, shown - 1, 4),
		        &last_us) &&
		    list_cursor_format(cursor, sizeof(cursor), (long long)last_us, last_id) &&
		    json_put_stringz(&b, cursor);
	} else {
		ok = ok && buf_appendz(&b, "null");
	}
	ok = ok && buf_appendz(&b, ",\"sessions\":[");
	for (int i = 0; ok && i < shown; i++)
		ok = buf_appendz(&b, i ? ",{\"id\":" : "{\"id\":") && list_put_uuid(&b, res, i, 0) &&
		    buf_appendz(&b, ",\"user_id\":") && list_put_uuid(&b, res, i, 1) &&
		    buf_appendz(&b, ",\"title\":") &&
		    json_put_string(&b, PQgetvalue(res, i, 2), (size_t)PQgetlength(res, i, 2)) &&
		    buf_appendz(&b, ",\"created_at\":") && list_put_ts(&b, res, i, 3) &&
		    buf_appendz(&b, ",\"updated_at\":") && list_put_ts(&b, res, i, 4) &&
		    buf_appendc(&b, '}');
	ok = ok && buf_append(&b, "]}", 2);
	if (!ok || (*list_json = buf_steal(&b)) == NULL) {
		buf_free(&b);
		return STORE_ERROR;
	}
	return STORE_OK;
}

enum store_rc
store_session_list(struct store *st, const char *user_id, const struct store_list_page *pg,
    char **list_json)
{
	char l[16], o[16], us[24];
	const char *after_id = pg->after_id != NULL ? pg->after_id : "00000000-0000-0000-0000-000000000000";
	PGresult *res;
	enum store_rc rc;

	*list_json = NULL;
	(void)snprintf(l, sizeof(l), "%d", pg->limit);
	(void)snprintf(o, sizeof(o), "%d", pg->offset);
	/* No cursor: from the end of time, which every row is before. */
	(void)snprintf(us, sizeof(us), "%lld", pg->after_id != NULL ? pg->after_us : LIST_CURSOR_END_US);
	if (pg->q != NULL) {
		const char *p[] = { user_id, l, us, after_id, pg->q };
		rc = store_exec_as(st, S_SESSION_SEARCH, 5, p, 1, &res);
	} else if (pg->after_id != NULL) {
		const char *p[] = { user_id, l, us, after_id };
		rc = store_exec_as(st, S_SESSION_LIST_AFTER, 4, p, 1, &res);
	} else {
		/* The first page too: the same rows as from the end of time,
		 * without evaluating the cursor's bounds on every row. */
		const char *p[] = { user_id, l, o };
		rc = store_exec_as(st, S_SESSION_LIST, 3, p, 1, &res);
	}
	if (rc != STORE_OK)
		return rc;
	rc = store_list_json(res, pg, list_json);
	PQclear(res);
	return rc;
}

enum store_rc
store_session_get(struct store *st, const char *user_id, const char *session_id, int limit,
    const char *before, char **session_json)
{
	char l[16];
	const char *p[] = { user_id, session_id, l, before };
	PGresult *res;
	enum store_rc rc;

	*session_json = NULL;
	(void)snprintf(l, sizeof(l), "%d", limit);
	if ((rc = store_exec(st, S_SESSION_GET, 4, p, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 1), "1") == 0)
		rc = STORE_INVALID;  /* before names no message of this session */
	else
		rc = store_dup(res, 0, 0, session_json);
	PQclear(res);
	return rc;
}

enum store_rc
store_session_rename(struct store *st, const char *user_id, const char *session_id,
    const char *title, char **session_json)
{
	const char *p[] = { user_id, session_id, title };

	return store_query_text(st, S_SESSION_RENAME, 3, p, session_json);
}

enum store_rc
store_session_delete(struct store *st, const char *user_id, const char *session_id)
{
	const char *p[] = { user_id, session_id };
	PGresult *res;
	enum store_rc rc;

	if ((rc = store_exec(st, S_SESSION_DELETE, 2, p, &res)) != STORE_OK)
		return rc;
	if (strcmp(PQcmdTuples(res), "0") == 0)
		rc = STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

enum store_rc
store_turn_begin(struct store *st, const char *user_id, const char *session_id,
    const char *content, int history, const char *idempotency_key, const char *worker_id,
    const struct store_slot_ask *slot, struct store_turn *turn)
{
	char limit[16], cap[16], age[16];
	const char *p[] = { user_id, session_id, content, limit, idempotency_key, worker_id,
		slot != NULL ? slot->holder : NULL, cap, age };
	PGresult *res;
	enum store_rc rc;

	memset(turn, 0, sizeof(*turn));
	(void)snprintf(limit, sizeof(limit), "%d", history);
	(void)snprintf(cap, sizeof(cap), "%d", slot != NULL ? slot->cap : 0);
	(void)snprintf(age, sizeof(age), "%d", slot != NULL ? slot->max_age_s : 0);
	if ((rc = store_exec(st, S_TURN_BEGIN, 9, p, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
		rc = STORE_NOT_FOUND;
	else if (strcmp(PQgetvalue(res, 0, 7), "1") != 0)
		rc = STORE_INVALID;   /* nothing to answer */
	else if (PQgetisnull(res, 0, 6))
		rc = STORE_LIMITED;   /* the holder is at its cap */
	else {
		turn->slot = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
		if (!PQgetisnull(res, 0, 5))
			rc = store_dup(res, 0, 5, &turn->attached_reply_id);
		else if (PQgetisnull(res, 0, 1))
			rc = STORE_INVALID;
		else if (store_dup(res, 0, 1, &turn->reply_id) != STORE_OK ||
		    store_dup(res, 0, 3, &turn->history_json) != STORE_OK)
			rc = STORE_ERROR;
		else {
			(void)store_dup(res, 0, 2, &turn->user_message_id);
			(void)store_dup(res, 0, 4, &turn->settings_json);
		}
	}
	PQclear(res);
	if (rc != STORE_OK) {
		/* Committed, but no stream runs (its session went meanwhile, no
		 * memory): the slot goes back now. */
		if (turn->slot > 0 && store_stream_slot_release(st, turn->slot) != STORE_OK)
			log_warn("stream slot %lld not released: it lapses by age", turn->slot);
		store_turn_free(turn);
	}
	return rc;
}

void
store_turn_free(struct store_turn *turn)
{
	free(turn->reply_id);
	free(turn->user_message_id);
	free(turn->history_json);
	free(turn->settings_json);
	free(turn->attached_reply_id);
	memset(turn, 0, sizeof(*turn));
}

enum store_rc
store_reply_append(struct store *st, const char *reply_id, const char *text, size_t len,
    const char *chunk_ends)
{
	char *copy;
	enum store_rc rc;
	PGresult *res;

	/* Text parameters are NUL-terminated; the engine's text holds no NUL. */
	if ((copy = strndup(text, len)) == NULL)
		return STORE_ERROR;
	const char *p[] = { reply_id, copy, chunk_ends };
	rc = store_exec(st, S_REPLY_APPEND, 3, p, &res);
	PQclear(res);
	free(copy);
	return rc;
}

/* Appends s as an element of a PostgreSQL array literal ("..." with \\ and
 * \" escaped). False when b is full. */
static bool
array_put_elem(struct buf *b, const char *s, size_t len, bool first)
{
	if ((!first && !buf_appendc(b, ',')) || !buf_appendc(b, '"'))
		return false;
	for (size_t i = 0; i < len; i++) {
		if ((s[i] == '"' || s[i] == '\\') && !buf_appendc(b, '\\'))
			return false;
		if (!buf_appendc(b, s[i]))
			return false;
	}
	return buf_appendc(b, '"');
}

enum store_rc
store_reply_append_many(struct store *st, size_t n, const struct store_reply_batch *batches)
{
	struct buf ids, texts, ends;
	enum store_rc rc = STORE_ERROR;
	PGresult *res;
	bool ok;

	/* Each array holds at most n replies' batches: bounded by the callers'
	 * reply limit, with room for escapes. */
	buf_init(&ids, 64 * n + 16);
	buf_init(&texts, 2 * (size_t)LIMIT_REPLY_BYTES * n + 16);
	buf_init(&ends, 2 * (size_t)LIMIT_CHUNK_ENDS_BYTES * n + 16);
	ok = buf_appendc(&ids, '{') && buf_appendc(&texts, '{') && buf_appendc(&ends, '{');
	for (size_t i = 0; ok && i < n; i++)
		ok = array_put_elem(&ids, batches[i].reply_id, strlen(batches[i].reply_id), i == 0) &&
		    array_put_elem(&texts, batches[i].text, batches[i].len, i == 0) &&
		    array_put_elem(&ends, batches[i].chunk_ends, strlen(batches[i].chunk_ends), i == 0);
	ok = ok && buf_appendc(&ids, '}') && buf_appendc(&texts, '}') && buf_appendc(&ends, '}');
	if (ok) {
		const char *p[] = { ids.data, texts.data, ends.data };

		if ((rc = store_exec(st, S_REPLY_APPEND_MANY, 3, p, &res)) == STORE_OK)
			PQclear(res);
	}
	buf_free(&ids);
	buf_free(&texts);
	buf_free(&ends);
	return rc;
}

enum store_rc
store_reply_finish(struct store *st, const char *reply_id, enum reply_status status,
    const char *model, long prompt_tokens, long completion_tokens, const char *error)
{
	char pt[24], ct[24];
	const char *p[] = { reply_id, reply_status_name(status), model, prompt_tokens >= 0 ? pt : NULL,
		completion_tokens >= 0 ? ct : NULL, error };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(pt, sizeof(pt), "%ld", prompt_tokens);
	(void)snprintf(ct, sizeof(ct), "%ld", completion_tokens);
	rc = store_exec(st, S_REPLY_FINISH, 6, p, &res);
	PQclear(res);
	return rc;
}

enum store_rc
store_reply_end(struct store *st, const struct reply_end *end)
{
	char pt[24], ct[24], *text;
	PGresult *res;
	enum store_rc rc;

	/* Text parameters are NUL-terminated; the engine's text holds no NUL. */
	if ((text = strndup(end->text != NULL ? end->text : "", end->text != NULL ? end->len : 0)) == NULL)
		return STORE_ERROR;
	(void)snprintf(pt, sizeof(pt), "%ld", end->prompt_tokens);
	(void)snprintf(ct, sizeof(ct), "%ld", end->completion_tokens);
	const char *p[] = { end->reply_id, text, end->text != NULL ? end->chunk_ends : "{}",
		reply_status_name(end->status), end->model, end->prompt_tokens >= 0 ? pt : NULL,
		end->completion_tokens >= 0 ? ct : NULL, end->error_code };
	rc = store_exec(st, S_REPLY_END, 8, p, &res);
	PQclear(res);
	free(text);
	return rc;
}

enum store_rc
store_metric_insert(struct store *st, const struct store_stream_metric *m)
{
	char ttfb[32], dur[32], chunks[24], pt[24], ct[24];
	const char *p[] = { m->route, m->user_id, m->session_id, m->message_id, reply_status_name(m->status),
		m->ttfb_ms >= 0 ? ttfb : NULL, dur, chunks,
		m->prompt_tokens >= 0 ? pt : NULL, m->completion_tokens >= 0 ? ct : NULL };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(ttfb, sizeof(ttfb), "%.3f", m->ttfb_ms);
	(void)snprintf(dur, sizeof(dur), "%.3f", m->duration_ms);
	(void)snprintf(chunks, sizeof(chunks), "%ld", m->chunks);
	(void)snprintf(pt, sizeof(pt), "%ld", m->prompt_tokens);
	(void)snprintf(ct, sizeof(ct), "%ld", m->completion_tokens);
	rc = store_exec(st, S_METRIC_INSERT, 10, p, &res);
	PQclear(res);
	return rc;
}

enum store_rc
store_turn_end(struct store *st, const struct reply_end *end, const struct store_stream_metric *m,
    long long slot, bool notify)
{
	char pt[24], ct[24], ttfb[32], dur[32], chunks[24], sl[24], *text = NULL;
	const char *status = reply_status_name(m->status);
	PGresult *res;
	enum store_rc rc;

	/* Text parameters are NUL-terminated; the engine's text holds no NUL. */
	if (end != NULL && (text = strndup(end->text != NULL ? end->text : "",
	    end->text != NULL ? end->len : 0)) == NULL)
		return STORE_ERROR;
	(void)snprintf(pt, sizeof(pt), "%ld", m->prompt_tokens);
	(void)snprintf(ct, sizeof(ct), "%ld", m->completion_tokens);
	(void)snprintf(ttfb, sizeof(ttfb), "%.3f", m->ttfb_ms);
	(void)snprintf(dur, sizeof(dur), "%.3f", m->duration_ms);
	(void)snprintf(chunks, sizeof(chunks), "%ld", m->chunks);
	(void)snprintf(sl, sizeof(sl), "%lld", slot);
	const char *p[] = { end != NULL ? end->reply_id : NULL, text,
		end != NULL && end->text != NULL ? end->chunk_ends : "{}",
		end != NULL ? reply_status_name(end->status) : status,
		end != NULL ? end->model : NULL,
		m->prompt_tokens >= 0 ? pt : NULL, m->completion_tokens >= 0 ? ct : NULL,
		end != NULL ? end->error_code : NULL,
		m->route, m->user_id, m->session_id, m->message_id,
		m->ttfb_ms >= 0 ? ttfb : NULL, dur, chunks, slot > 0 ? sl : NULL,
		notify ? "true" : "false" };
	rc = store_exec(st, S_TURN_END, 17, p, &res);
	PQclear(res);
	free(text);
	return rc;
}

enum store_rc
store_cancel(struct store *st, const char *user_id, const char *session_id, char **reply_id)
{
	const char *p[] = { user_id, session_id };
	PGresult *res;
	enum store_rc rc;

	*reply_id = NULL;
	if ((rc = store_exec(st, S_CANCEL, 2, p, &res)) != STORE_OK)
		return rc;
	if (strcmp(PQgetvalue(res, 0, 0), "0") == 0)
		rc = STORE_NOT_FOUND;
	else if (PQgetisnull(res, 0, 1))
		rc = STORE_CONFLICT;
	else
		rc = store_dup(res, 0, 1, reply_id);
	PQclear(res);
	return rc;
}

enum store_rc
store_reply_read(struct store *st, const char *user_id, const char *session_id,
    const char *reply_id, int stale_after_s, struct store_reply *out)
{
	char stale[16];
	const char *p[] = { user_id, session_id, reply_id, stale };
	PGresult *res;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	(void)snprintf(stale, sizeof(stale), "%d", stale_after_s);
	if ((rc = store_exec(st, S_REPLY_READ, 4, p, &res)) != STORE_OK)
		return rc;
	if (PQntuples(res) != 1)
		rc = STORE_NOT_FOUND;
	else if (store_dup(res, 0, 0, &out->id) != STORE_OK ||
	    !reply_status_parse(PQgetvalue(res, 0, 1), &out->status) ||
	    store_dup(res, 0, 2, &out->content) != STORE_OK ||
	    store_dup(res, 0, 3, &out->chunk_ends) != STORE_OK ||
	    store_dup(res, 0, 4, &out->error) != STORE_OK)
		rc = STORE_ERROR;
	else {
		out->content_len = (size_t)PQgetlength(res, 0, 2);
		out->stale = strcmp(PQgetvalue(res, 0, 5), "1") == 0;
	}
	PQclear(res);
	if (rc != STORE_OK)
		store_reply_free(out);
	return rc;
}

void
store_reply_free(struct store_reply *r)
{
	free(r->id);
	free(r->content);
	free(r->chunk_ends);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

/* Opens a connection outside the pool (listener, master). */
static PGconn *
store_connect_once(const char *conninfo)
{
	static const char *const keys[] = { "dbname", "connect_timeout", "application_name", NULL };
	const char *values[] = { conninfo, "5", "chatd", NULL };
	PGconn *pg = PQconnectdbParams(keys, values, 1);

	if (pg != NULL && PQstatus(pg) == CONNECTION_OK)
		return pg;
	log_warn("database connection failed: %s", pg != NULL ? PQerrorMessage(pg) : "out of memory");
	PQfinish(pg);
	return NULL;
}

long
store_interrupt_worker(const char *conninfo, const char *worker_id)
{
	const char *p[] = { worker_id };
	PGconn *pg = store_connect_once(conninfo);
	PGresult *res;
	long n = -1;

	if (pg == NULL)
		return -1;
	res = PQexecParams(pg,
	    "UPDATE messages SET status = 'interrupted', error = 'worker_died', updated_at = now() "
	    "WHERE id IN (SELECT message_id FROM replies_in_flight) "
	    "  AND status = 'streaming' AND worker = $1", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) == PGRES_COMMAND_OK)
		n = strtol(PQcmdTuples(res), NULL, 10);
	else
		log_error("interrupting replies of %s: %s", worker_id, PQresultErrorMessage(res));
	PQclear(res);
	/* Its streams are gone: so are their slots. */
	res = PQexecParams(pg, "DELETE FROM stream_slots WHERE worker = $1", 1, NULL, p, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_COMMAND_OK)
		log_error("freeing the stream slots of %s: %s", worker_id, PQresultErrorMessage(res));
	PQclear(res);
	PQfinish(pg);
	return n;
}

void
store_listen_loop(const char *conninfo, const char *const *channels,
    void (*on_notify)(void *ctx, const char *channel, const char *payload), void *ctx,
    atomic_bool *stop)
{
	while (!atomic_load(stop)) {
		PGconn *pg = store_connect_once(conninfo);
		bool listening = pg != NULL;

		for (size_t i = 0; listening && channels[i] != NULL; i++) {
			char *quoted = PQescapeIdentifier(pg, channels[i], strlen(channels[i]));
			char sql[160];
			PGresult *res;

			if (quoted == NULL) {
				listening = false;
				break;
			}
			(void)snprintf(sql, sizeof(sql), "LISTEN %s", quoted);
			PQfreemem(quoted);
			res = PQexec(pg, sql);
			if (PQresultStatus(res) != PGRES_COMMAND_OK) {
				log_error("LISTEN %s: %s", channels[i], PQresultErrorMessage(res));
				listening = false;
			}
			PQclear(res);
		}
		if (listening)
			on_notify(ctx, NULL, "listening");
		while (listening && !atomic_load(stop) && PQstatus(pg) == CONNECTION_OK) {
			struct pollfd pfd = { .fd = PQsocket(pg), .events = POLLIN };
			PGnotify *n;

			if (poll(&pfd, 1, 500) < 0 && errno != EINTR)
				break;
			if (!PQconsumeInput(pg))
				break;
			while ((n = PQnotifies(pg)) != NULL) {
				on_notify(ctx, n->relname, n->extra);
				PQfreemem(n);
			}
		}
		PQfinish(pg);
		if (listening)
			on_notify(ctx, NULL, "deaf");
		if (!atomic_load(stop))
			sleep(1);  /* the database went away: retry, gently */
	}
}

enum store_rc
store_notify_follow(struct store *st, const char *reply_id)
{
	const char *p[] = { reply_id };
	PGresult *res;
	enum store_rc rc;

	if ((rc = store_exec(st, S_NOTIFY_FOLLOW, 1, p, &res)) == STORE_OK)
		PQclear(res);
	return rc;
}

enum store_rc
store_notify_reply(struct store *st, const char *reply_id)
{
	const char *p[] = { reply_id };
	PGresult *res;
	enum store_rc rc;

	if ((rc = store_exec(st, S_NOTIFY_REPLY, 1, p, &res)) == STORE_OK)
		PQclear(res);
	return rc;
}

enum store_rc
store_settings_get(struct store *st, const char *user_id, char **settings_json)
{
	const char *p[] = { user_id };

	return store_query_text(st, S_SETTINGS_GET, 1, p, settings_json);
}

enum store_rc
store_settings_put(struct store *st, const char *user_id, const char *patch_json,
    char **settings_json)
{
	const char *p[] = { user_id, patch_json };

	return store_query_text(st, S_SETTINGS_PUT, 2, p, settings_json);
}

enum store_rc
store_session_resolve(struct store *st, const char *user_id, const char *ref, const char *title,
    const char *anon_scope, char **session_id)
{
	char scoped[300];

	*session_id = NULL;
	/* An anonymous session belongs to the address that opened it. */
	if (user_id == NULL && anon_scope == NULL)
		anon_scope = "";
	if (user_id == NULL && ref == NULL) {
		const char *p[] = { title, anon_scope };
		return store_query_text(st, S_SESSION_CREATE_ANON, 2, p, session_id);
	}
	if (user_id == NULL && auth_is_uuid(ref)) {
		const char *p[] = { ref, anon_scope };
		return store_query_text(st, S_SESSION_OWNED_ANON, 2, p, session_id);
	}
	if (ref == NULL) {
		char *json = NULL;
		enum store_rc rc = store_session_create(st, user_id, title, NULL, &json);
		json_object *o;
		json_object *id;

		if (rc != STORE_OK)
			return rc;
		o = json_tokener_parse(json);
		free(json);
		if (o == NULL || !json_object_object_get_ex(o, "id", &id) ||
		    (*session_id = strdup(json_object_get_string(id))) == NULL)
			rc = STORE_ERROR;
		json_object_put(o);
		return rc;
	}
	if (auth_is_uuid(ref)) {
		const char *p[] = { user_id, ref };
		return store_query_text(st, S_SESSION_OWNED, 2, p, session_id);
	}
	if (user_id == NULL) {
		int n = snprintf(scoped, sizeof(scoped), "%s/%s", anon_scope != NULL ? anon_scope : "", ref);
		if (n < 0 || (size_t)n >= sizeof(scoped))
			return STORE_INVALID;
		ref = scoped;
	}
	const char *pu[] = { user_id, ref, title };
	const char *pa[] = { ref, title, anon_scope };
	enum stmt s = user_id != NULL ? S_SESSION_EXTERNAL : S_SESSION_EXTERNAL_ANON;
	const char *const *p = user_id != NULL ? pu : pa;
	enum store_rc rc = store_query_text(st, s, 3, p, session_id);
	if (rc == STORE_NOT_FOUND)  /* lost a creation race: it exists now */
		rc = store_query_text(st, s, 3, p, session_id);
	return rc;
}

enum store_rc
store_gateway_job_submit(struct store *st, const char *user_id, const char *room,
    const char *messages_json, char **job_id)
{
	const char *p[] = { room, user_id, messages_json };

	return store_query_text(st, S_GATEWAY_JOB, 3, p, job_id);
}

enum store_rc
store_user_exists(struct store *st, const char *user_id)
{
	const char *p[] = { user_id };
	PGresult *res;
	enum store_rc rc;

	if ((rc = store_exec(st, S_USER_EXISTS, 1, p, &res)) != STORE_OK)
		return rc;
	rc = PQntuples(res) == 1 ? STORE_OK : STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

enum store_rc
store_rate_hit(struct store *st, const char *key, int window_s, int *hits, int *reset_s)
{
	char w[16];
	const char *p[] = { key, w };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(w, sizeof(w), "%d", window_s);
	if ((rc = store_exec(st, S_RATE_HIT, 2, p, &res)) != STORE_OK)
		return rc;
	*hits = atoi(PQgetvalue(res, 0, 0));
	*reset_s = atoi(PQgetvalue(res, 0, 1));
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_rate_sweep(struct store *st, int window_s, long *deleted)
{
	char w[16];
	const char *p[] = { w };
	PGresult *res;
	enum store_rc rc;

	*deleted = 0;
	(void)snprintf(w, sizeof(w), "%d", window_s);
	if ((rc = store_exec(st, S_RATE_SWEEP, 1, p, &res)) != STORE_OK)
		return rc;
	*deleted = atol(PQcmdTuples(res));
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_stream_slot_take(struct store *st, const char *holder, const char *worker_id, int cap,
    int max_age_s, long long *slot)
{
	char c[16], a[16];
	const char *p[] = { holder, worker_id, c, a };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(c, sizeof(c), "%d", cap);
	(void)snprintf(a, sizeof(a), "%d", max_age_s);
	if ((rc = store_exec(st, S_SLOT_TAKE, 4, p, &res)) != STORE_OK)
		return rc;
	if (PQgetisnull(res, 0, 0))
		rc = STORE_CONFLICT;
	else
		*slot = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return rc;
}

enum store_rc
store_reply_chunks_sweep(struct store *st, long *deleted)
{
	return exec_first_long(st, S_CHUNKS_SWEEP, 0, NULL, deleted);
}

enum store_rc
store_stream_slot_release(struct store *st, long long slot)
{
	char id[24];
	const char *p[] = { id };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(id, sizeof(id), "%lld", slot);
	if ((rc = store_exec(st, S_SLOT_RELEASE, 1, p, &res)) == STORE_OK)
		PQclear(res);
	return rc;
}

enum store_rc
store_user_tokens_today(struct store *st, const char *user_id, long long *tokens)
{
	const char *p[] = { user_id };
	PGresult *res;
	enum store_rc rc;

	*tokens = 0;
	if ((rc = store_exec(st, S_TOKENS_TODAY, 1, p, &res)) != STORE_OK)
		return rc;
	*tokens = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_process_beat(struct store *st, const char *id, const char *host, long pid, const char *kind,
    long long proc_start, double started_s)
{
	char pd[24], ps[24], ss[48];
	const char *p[] = { id, host, pd, kind, ps, ss };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(pd, sizeof(pd), "%ld", pid);
	(void)snprintf(ps, sizeof(ps), "%lld", proc_start);
	(void)snprintf(ss, sizeof(ss), "%.6f", started_s);
	if ((rc = store_exec(st, S_PROCESS_BEAT, 6, p, &res)) != STORE_OK)
		return rc;
	if (strcmp(PQcmdTuples(res), "0") != 0)
		log_warn("process %s: %s replies of an earlier process with this id interrupted",
		    id, PQcmdTuples(res));
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_room_claim(struct store *st, const char *room, const char *user_id, char **owner)
{
	const char *p[] = { room, user_id };

	return store_query_text(st, S_ROOM_CLAIM, 2, p, owner);
}

enum store_rc
store_room_owner(struct store *st, const char *room, char **owner)
{
	const char *p[] = { room };

	return store_query_text(st, S_ROOM_OWNER, 1, p, owner);
}

enum store_rc
store_process_gone(struct store *st, const char *id)
{
	const char *p[] = { id };
	PGresult *res;
	enum store_rc rc;

	if ((rc = store_exec(st, S_PROCESS_GONE, 1, p, &res)) == STORE_OK)
		PQclear(res);
	return rc;
}

/* Reads one owner from columns 0-3 of row, and quiet from column 4 when
 * the statement has it. */
static enum store_rc
store_owner_row(const PGresult *res, int row, bool with_quiet, struct store_owner *o)
{
	memset(o, 0, sizeof(*o));
	if (store_dup(res, row, 0, &o->id) != STORE_OK)
		return STORE_ERROR;
	o->registered = strcmp(PQgetvalue(res, row, 1), "1") == 0;
	o->proc_start = strtoll(PQgetvalue(res, row, 2), NULL, 10);
	o->beating = strcmp(PQgetvalue(res, row, 3), "1") == 0;
	o->quiet = with_quiet && strcmp(PQgetvalue(res, row, 4), "1") == 0;
	return STORE_OK;
}

/* Fills o->quiet (S_OWNER_QUIET). */
static enum store_rc
store_owner_quiet(struct store *st, int stale_s, struct store_owner *o)
{
	char s[16];
	const char *p[] = { o->id, s };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(s, sizeof(s), "%d", stale_s);
	if ((rc = store_exec(st, S_OWNER_QUIET, 2, p, &res)) != STORE_OK)
		return rc;
	o->quiet = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
	PQclear(res);
	return STORE_OK;
}

enum store_rc
store_owners_list(struct store *st, int stale_s, struct store_owner **owners, size_t *n)
{
	char s[16];
	const char *p[] = { s };
	PGresult *res;
	enum store_rc rc;
	int rows;

	*owners = NULL;
	*n = 0;
	(void)snprintf(s, sizeof(s), "%d", stale_s);
	if ((rc = store_exec(st, S_OWNERS, 1, p, &res)) != STORE_OK)
		return rc;
	rows = PQntuples(res);
	if (rows > 0 && (*owners = calloc((size_t)rows, sizeof(**owners))) == NULL)
		rc = STORE_ERROR;
	for (int i = 0; rc == STORE_OK && i < rows; i++) {
		if ((rc = store_owner_row(res, i, false, &(*owners)[i])) == STORE_OK)
			(*n)++;
	}
	PQclear(res);
	/* Quiet matters only without a heartbeat (core/sweep.c). */
	for (size_t i = 0; rc == STORE_OK && i < *n; i++)
		if (!(*owners)[i].beating)
			rc = store_owner_quiet(st, stale_s, &(*owners)[i]);
	if (rc != STORE_OK) {
		store_owners_free(*owners, *n);
		*owners = NULL;
		*n = 0;
	}
	return rc;
}

void
store_owners_free(struct store_owner *owners, size_t n)
{
	for (size_t i = 0; owners != NULL && i < n; i++)
		free(owners[i].id);
	free(owners);
}

enum store_rc
store_reply_owner(struct store *st, const char *user_id, const char *session_id, int stale_s,
    struct store_owner *out)
{
	char s[16];
	const char *p[] = { user_id, session_id, s };
	PGresult *res;
	enum store_rc rc;

	memset(out, 0, sizeof(*out));
	(void)snprintf(s, sizeof(s), "%d", stale_s);
	if ((rc = store_exec(st, S_REPLY_OWNER, 3, p, &res)) != STORE_OK)
		return rc;
	rc = PQntuples(res) == 1 ? store_owner_row(res, 0, true, out) : STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

enum store_rc
store_owners_interrupt(struct store *st, const char *const *ids, size_t n, long *count)
{
	struct buf b;
	enum store_rc rc = STORE_ERROR;
	PGresult *res;
	bool ok;

	*count = 0;
	if (n == 0)
		return STORE_OK;
	buf_init(&b, 1 << 20);
	ok = buf_appendc(&b, '{');
	for (size_t i = 0; ok && i < n; i++)
		ok = array_put_elem(&b, ids[i], strlen(ids[i]), i == 0);
	ok = ok && buf_appendc(&b, '}');
	if (ok) {
		const char *p[] = { b.data };

		if ((rc = store_exec(st, S_INTERRUPT_OWNERS, 1, p, &res)) == STORE_OK) {
			*count = strtol(PQgetvalue(res, 0, 0), NULL, 10);
			PQclear(res);
		}
	}
	buf_free(&b);
	return rc;
}

enum store_rc
store_reply_interrupt_stale(struct store *st, const char *reply_id, int stale_s)
{
	char s[16];
	const char *p[] = { reply_id, s };
	PGresult *res;
	enum store_rc rc;

	(void)snprintf(s, sizeof(s), "%d", stale_s);
	if ((rc = store_exec(st, S_REPLY_INTERRUPT_STALE, 2, p, &res)) == STORE_OK)
		PQclear(res);
	return rc;
}

enum store_rc
store_metrics_maintain(struct store *st, int retention_days, long *dropped)
{
	char d[16];
	const char *p[] = { d };

	(void)snprintf(d, sizeof(d), "%d", retention_days);
	return exec_first_long(st, S_METRICS_MAINTAIN, 1, p, dropped);
}
