-- 011_write_paths.sql: replies stored without bloat; stream_metrics
-- partitioned by day with retention; a daily usage rollup.
--
-- Applied in one transaction. On a populated database it holds an
-- ACCESS EXCLUSIVE lock on stream_metrics while the table is attached as a
-- partition (one read of it, to check the range) and the rollup is filled
-- (one more read), and, from DROP INDEX messages_streaming to the commit,
-- an ACCESS EXCLUSIVE lock on messages: the rest of the file (an UPDATE of
-- the errored replies' keys, the rebuild of one partial unique index, the
-- metrics steps) runs under it, so every read and write of messages waits.
-- Seconds at 10 M messages and 5 M metrics rows, not measured at that
-- volume: apply it in a quiet moment (README, Database).

-- ---------------------------------------------------------------- replies
--
-- A streaming reply's text no longer goes to its messages row batch after
-- batch (each append rewrote the row and its TOAST chunks: about five
-- dead row versions per reply). Batches are inserted into reply_chunks;
-- when the reply leaves 'streaming' (whatever statement does it: its end,
-- the sweep, a stale resume), the trigger below folds them into
-- messages.content and chunk_ends in the same transaction and deletes them.
-- So a reply's row is written twice: inserted, and updated once at its end.
CREATE TABLE reply_chunks (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    seq        bigint GENERATED ALWAYS AS IDENTITY,
    content    text NOT NULL,
    chunk_ends integer[] NOT NULL,   -- absolute byte offsets, as messages.chunk_ends
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, seq)
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);

-- The replies in flight: what messages_streaming (a partial index on
-- status) found for the sweep and heartbeats. An index whose predicate
-- names status makes every update that changes status non-HOT, the end of
-- every reply included; this small table does not. A row is inserted with
-- the reply and deleted when it ends.
CREATE TABLE replies_in_flight (
    message_id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE
) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000);

CREATE FUNCTION reply_registered() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO replies_in_flight (message_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;
CREATE TRIGGER messages_reply_registered AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.status = 'streaming') EXECUTE FUNCTION reply_registered();
-- The replies already in flight, after the trigger: CREATE TRIGGER holds
-- a lock that keeps new rows out until the commit, and this statement's
-- snapshot sees every row committed before it, so none is missed.
INSERT INTO replies_in_flight (message_id)
SELECT id FROM messages WHERE status = 'streaming'
ON CONFLICT DO NOTHING;

-- The end of a reply: its chunks become its text. Runs after the row is
-- locked, and each statement here reads a fresh snapshot (READ COMMITTED),
-- so a batch committed just before is folded and one not yet committed
-- waits (appends hold FOR SHARE on the row), then finds the reply ended
-- and stores nothing. A reply that ends as 'error' gives back its
-- Idempotency-Key: a retry generates anew (the unique index below no
-- longer names status, which kept the end of every reply off HOT).
-- The statement that ends a reply may append its last text itself
-- (store_reply_end: content = content || tail): the chunks go before it.
-- One that replaces the text outright keeps its text.
CREATE FUNCTION reply_fold() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    n_old integer := coalesce(array_length(OLD.chunk_ends, 1), 0);
BEGIN
    IF starts_with(NEW.content, OLD.content)
       AND NEW.chunk_ends[1:n_old] IS NOT DISTINCT FROM OLD.chunk_ends THEN
        NEW.content := OLD.content || coalesce(
            (SELECT string_agg(c.content, '' ORDER BY c.seq) FROM reply_chunks c
             WHERE c.message_id = OLD.id), '')
            || substr(NEW.content, length(OLD.content) + 1);
        NEW.chunk_ends := OLD.chunk_ends || ARRAY(
            SELECT e.v FROM reply_chunks c, unnest(c.chunk_ends) WITH ORDINALITY AS e(v, n)
            WHERE c.message_id = OLD.id ORDER BY c.seq, e.n)
            || coalesce(NEW.chunk_ends[n_old + 1:], '{}');
    END IF;
    DELETE FROM reply_chunks WHERE message_id = OLD.id;
    DELETE FROM replies_in_flight WHERE message_id = OLD.id;
    IF NEW.status = 'error' THEN
        NEW.idempotency_key := NULL;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER messages_reply_fold BEFORE UPDATE OF status ON messages
    FOR EACH ROW WHEN (OLD.status = 'streaming' AND NEW.status IS DISTINCT FROM 'streaming')
    EXECUTE FUNCTION reply_fold();

-- What a reader sees of a reply: the stored text, plus the chunks while it
-- streams (session reads, the history of the next turn, resume).
CREATE FUNCTION reply_text(p_id uuid, p_status text, p_content text) RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_status = 'streaming' THEN p_content || coalesce(
              (SELECT string_agg(c.content, '' ORDER BY c.seq) FROM reply_chunks c
               WHERE c.message_id = p_id), '') ELSE p_content END $$;
CREATE FUNCTION reply_chunk_ends(p_id uuid, p_status text, p_ends integer[]) RETURNS integer[]
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_status = 'streaming' THEN p_ends || ARRAY(
              SELECT e.v FROM reply_chunks c, unnest(c.chunk_ends) WITH ORDINALITY AS e(v, n)
              WHERE c.message_id = p_id ORDER BY c.seq, e.n) ELSE p_ends END $$;
-- When a reply was last written: its row, or its newest chunk (the sweep
-- and resume tell a silent generator from a slow one by it).
CREATE FUNCTION reply_touched_at(p_id uuid, p_status text, p_updated timestamptz)
    RETURNS timestamptz LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN p_status = 'streaming' THEN greatest(p_updated,
              (SELECT c.created_at FROM reply_chunks c WHERE c.message_id = p_id
               ORDER BY c.seq DESC LIMIT 1)) ELSE p_updated END $$;

DROP INDEX messages_streaming;
UPDATE messages SET idempotency_key = NULL WHERE status = 'error' AND idempotency_key IS NOT NULL;
DROP INDEX messages_idempotency;
CREATE UNIQUE INDEX messages_idempotency ON messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Room on each page for the one update of a reply: its end, HOT when the
-- new version fits on the page (no indexed column changes). A reply's row
-- is inserted small and grows by its whole text (up to ~2 kB inline, the
-- rest TOASTed) at its end, so the room left by inserts is filled by that
-- growth rather than wasted: at 50, 7 to 8 ends in 10 are HOT with 5
-- replies in flight, under half with 50 at once (80: 1 in 2 and 1 in 4;
-- README, Database). Vacuum by a fixed count of dead rows rather than a
-- fifth of a table that only grows. Applies to pages written from now on.
ALTER TABLE messages SET (fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 10000,
    autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.02);

-- A turn updates its session's updated_at, which the list is ordered by
-- and so indexed (chat_sessions_user_updated): never HOT, one dead row per
-- turn (not per batch). Vacuumed by count too, not at a fifth of the table.
ALTER TABLE chat_sessions SET (autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_threshold = 5000, autovacuum_analyze_scale_factor = 0.02);

-- ---------------------------------------------------------- stream_metrics
--
-- Partitioned by day (UTC) so that retention drops whole partitions
-- (stream_metrics_maintain below, run by the chatd master) instead of
-- deleting rows. The table as it was becomes one partition,
-- stream_metrics_legacy, up to the end of today (UTC): attached, not
-- copied, and dropped whole once its last day is past the retention.
-- Rows outside every partition (a clock far off) land in
-- stream_metrics_default rather than fail; the maintenance moves them into
-- the day's partition when it creates it, and deletes them past retention.
-- The views follow the table they name through a rename: made anew below.
DROP VIEW usage_by_user;
DROP VIEW stream_summary_last_hour;
ALTER TABLE stream_metrics RENAME TO stream_metrics_legacy;
ALTER INDEX stream_metrics_created RENAME TO stream_metrics_legacy_created;
ALTER TABLE stream_metrics_legacy ALTER COLUMN id DROP IDENTITY;
-- The budget reads the rollup now: this index is no longer needed.
DROP INDEX IF EXISTS stream_metrics_user_day;

CREATE TABLE stream_metrics (
    id                bigint GENERATED ALWAYS AS IDENTITY,
    route             text NOT NULL,
    user_id           uuid,
    session_id        uuid,
    message_id        uuid,
    status            text NOT NULL,
    ttfb_ms           double precision,
    duration_ms       double precision NOT NULL,
    chunks            integer NOT NULL DEFAULT 0,
    prompt_tokens     integer,
    completion_tokens integer,
    created_at        timestamptz NOT NULL DEFAULT now()
) PARTITION BY RANGE (created_at);
CREATE INDEX stream_metrics_created ON stream_metrics (created_at);
SELECT setval(pg_get_serial_sequence('stream_metrics', 'id'),
              coalesce((SELECT max(id) FROM stream_metrics_legacy), 0) + 1, false);

-- An empty table (a new install) is not kept: day partitions only.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM stream_metrics_legacy) THEN
        EXECUTE format('ALTER TABLE stream_metrics ATTACH PARTITION stream_metrics_legacy '
                       'FOR VALUES FROM (MINVALUE) TO (%L)',
                       (date_trunc('day', now() AT TIME ZONE 'UTC') + interval '1 day') AT TIME ZONE 'UTC');
    ELSE
        DROP TABLE stream_metrics_legacy;
    END IF;
END
$$;
CREATE TABLE stream_metrics_default PARTITION OF stream_metrics DEFAULT;

-- The day partition for day (UTC), created unless one exists; rows that
-- wait for it in the default partition are moved in. False when another
-- partition already covers part of that day (the legacy one).
CREATE FUNCTION stream_metrics_partition_create(p_day date) RETURNS boolean
LANGUAGE plpgsql SET TimeZone = 'UTC' AS $$
DECLARE
    name text := format('stream_metrics_p%s', to_char(p_day, 'YYYYMMDD'));
    lo timestamptz := p_day::timestamp AT TIME ZONE 'UTC';
    hi timestamptz := (p_day + 1)::timestamp AT TIME ZONE 'UTC';
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'stream_metrics'::regclass
                 AND pg_get_expr(c.relpartbound, c.oid) <> 'DEFAULT'
                 AND coalesce(stream_metrics_bound(c.oid, false), '-infinity') < hi
                 AND coalesce(stream_metrics_bound(c.oid, true), 'infinity') > lo) THEN
        RETURN false;   -- overlaps a partition of another shape
    END IF;
    IF EXISTS (SELECT 1 FROM stream_metrics_default WHERE created_at >= lo AND created_at < hi) THEN
        EXECUTE format('CREATE TABLE %I (LIKE stream_metrics INCLUDING DEFAULTS)', name);
        EXECUTE format('WITH moved AS (DELETE FROM stream_metrics_default '
                       'WHERE created_at >= $1 AND created_at < $2 RETURNING *) '
                       'INSERT INTO %I SELECT * FROM moved', name) USING lo, hi;
        EXECUTE format('ALTER TABLE stream_metrics ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
    ELSE
        EXECUTE format('CREATE TABLE %I PARTITION OF stream_metrics FOR VALUES FROM (%L) TO (%L)',
                       name, lo, hi);
    END IF;
    RETURN true;
END
$$;

-- A range partition's upper bound (upper) or lower bound; NULL for
-- MINVALUE/MAXVALUE and for the default partition.
CREATE FUNCTION stream_metrics_bound(p_part oid, p_upper boolean) RETURNS timestamptz
LANGUAGE sql STABLE SET TimeZone = 'UTC' AS $$
    SELECT (regexp_match(pg_get_expr(c.relpartbound, c.oid),
                         CASE WHEN p_upper THEN 'TO \(''([^'']+)''\)' ELSE 'FROM \(''([^'']+)''\)' END))[1]::timestamptz
    FROM pg_class c WHERE c.oid = p_part
$$;

-- The retention job (the chatd master calls it at start-up and hourly):
-- creates the partitions of today and the next p_ahead days, drops those
-- that end at or before midnight UTC p_retention_days days ago, deletes
-- the default partition's rows older than that. Returns the partitions
-- dropped. A lock it cannot take within 2 s (a long report reading the
-- table) fails the call, which is retried at the next run, rather than
-- queue the inserts of every stream behind it.
CREATE FUNCTION stream_metrics_maintain(p_retention_days integer, p_ahead integer DEFAULT 7)
RETURNS integer
LANGUAGE plpgsql SET TimeZone = 'UTC' SET lock_timeout = '2s' AS $$
DECLARE
    today date := (now() AT TIME ZONE 'UTC')::date;
    cutoff timestamptz := (today - p_retention_days)::timestamp AT TIME ZONE 'UTC';
    part record;
    dropped integer := 0;
BEGIN
    -- One run at a time, whichever host's master calls it.
    PERFORM pg_advisory_xact_lock(hashtext('stream_metrics_maintain'));
    FOR d IN 0 .. p_ahead LOOP
        PERFORM stream_metrics_partition_create(today + d);
    END LOOP;
    FOR part IN SELECT c.oid, c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                WHERE i.inhparent = 'stream_metrics'::regclass
                  AND stream_metrics_bound(c.oid, true) <= cutoff LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM stream_metrics_default WHERE created_at < cutoff;
    RETURN dropped;
END
$$;

-- ------------------------------------------------------------ usage rollup
--
-- Requests and tokens per user and UTC day, kept current by a trigger on
-- every stream_metrics row (one upsert per stream), so usage_by_user and
-- the daily token budget read one row per user and day instead of
-- scanning stream_metrics, and survive its retention. user_id NULL:
-- anonymous streams, one row per day for all of them.
CREATE TABLE usage_daily (
    user_id           uuid,
    day               date NOT NULL,
    requests          bigint NOT NULL,
    prompt_tokens     bigint,
    completion_tokens bigint,
    CONSTRAINT usage_daily_key UNIQUE NULLS NOT DISTINCT (user_id, day)
);

-- NULL counts stay NULL in the sums, as sum() over the rows would.
CREATE FUNCTION usage_daily_add() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_daily AS u (user_id, day, requests, prompt_tokens, completion_tokens)
    VALUES (NEW.user_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1,
            NEW.prompt_tokens, NEW.completion_tokens)
    ON CONFLICT (user_id, day) DO UPDATE SET
        requests = u.requests + 1,
        prompt_tokens = coalesce(u.prompt_tokens + EXCLUDED.prompt_tokens,
                                 u.prompt_tokens, EXCLUDED.prompt_tokens),
        completion_tokens = coalesce(u.completion_tokens + EXCLUDED.completion_tokens,
                                     u.completion_tokens, EXCLUDED.completion_tokens);
    RETURN NULL;
END
$$;
CREATE TRIGGER stream_metrics_usage AFTER INSERT ON stream_metrics
    FOR EACH ROW EXECUTE FUNCTION usage_daily_add();

INSERT INTO usage_daily (user_id, day, requests, prompt_tokens, completion_tokens)
SELECT user_id, (created_at AT TIME ZONE 'UTC')::date, count(*), sum(prompt_tokens),
       sum(completion_tokens)
FROM stream_metrics
GROUP BY 1, 2;

-- As in 002_reports.sql, on the partitioned table.
CREATE VIEW stream_summary_last_hour AS
SELECT route,
       status,
       count(*)                                                        AS streams,
       round(avg(ttfb_ms)::numeric, 1)                                 AS ttfb_avg_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY ttfb_ms))::numeric, 1) AS ttfb_p99_ms,
       round(avg(duration_ms)::numeric, 1)                             AS duration_avg_ms,
       sum(chunks)                                                     AS chunks,
       sum(completion_tokens)                                          AS completion_tokens
FROM stream_metrics
WHERE created_at > now() - interval '1 hour'
GROUP BY route, status;

-- Same columns as before; the day is now the UTC day (it was the session
-- time zone's, UTC for chatd and the tests).
CREATE VIEW usage_by_user AS
SELECT user_id,
       day::timestamp AT TIME ZONE 'UTC' AS day,
       requests,
       prompt_tokens,
       completion_tokens
FROM usage_daily;

-- Today's and the next week's partitions.
SELECT stream_metrics_maintain(100000);
