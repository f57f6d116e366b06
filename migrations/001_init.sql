-- 001_init.sql: users, chat sessions, messages, per-user settings, stream metrics.
-- Applied once by scripts/migrate, inside one transaction.

-- Timestamps leave the database as ISO-8601 UTC with milliseconds, the shape
-- every client contract uses ("2025-10-11T10:30:00.000Z").
CREATE FUNCTION iso_ts(t timestamptz) RETURNS text
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$;

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    username      text NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    email         text CHECK (length(email) <= 254),
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
-- Usernames are unique regardless of case, so "Alice" cannot shadow "alice".
CREATE UNIQUE INDEX users_username_key ON users (lower(username));

-- Per-user overrides of the server defaults (NULL: use the default).
CREATE TABLE user_settings (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    system_prompt  text,
    model          text,
    temperature    double precision CHECK (temperature BETWEEN 0 AND 2),
    realtime_model text,
    voice          text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A conversation. user_id is NULL for anonymous sessions (seed 003), which
-- only anonymous callers can continue.
CREATE TABLE chat_sessions (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    title       text NOT NULL DEFAULT 'New chat',
    -- A client-chosen session name (seeds 002/003 accept any string as the
    -- session id); unique per owner, anonymous owners included.
    external_id text CHECK (length(external_id) <= 300),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_sessions_user_updated ON chat_sessions (user_id, updated_at DESC, id);
CREATE UNIQUE INDEX chat_sessions_external ON chat_sessions (user_id, external_id)
    NULLS NOT DISTINCT WHERE external_id IS NOT NULL;

-- One message. An assistant reply is inserted as 'streaming' when its
-- generation starts and ends as complete, cancelled, interrupted or error;
-- chunk_ends records where each streamed delta ended (byte offsets into
-- content) so a resumed client can be sent exactly the events it missed.
CREATE TABLE messages (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    seq               bigint GENERATED ALWAYS AS IDENTITY,
    session_id        uuid NOT NULL REFERENCES chat_sessions (id) ON DELETE CASCADE,
    role              text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           text NOT NULL DEFAULT '',
    status            text NOT NULL DEFAULT 'complete'
                      CHECK (status IN ('streaming', 'complete', 'cancelled', 'interrupted', 'error')),
    model             text,
    prompt_tokens     integer,
    completion_tokens integer,
    chunk_ends        integer[] NOT NULL DEFAULT '{}',
    error             text,             -- the reason code when not complete
    idempotency_key   text,             -- a send's Idempotency-Key (assistant rows)
    cancel_requested  boolean NOT NULL DEFAULT false,
    worker            text,             -- host:pid generating a 'streaming' reply
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX messages_session_seq ON messages (session_id, seq);
-- A retried send with the same key finds the generation it started; a
-- reply that failed leaves the index, so a retry may generate anew.
CREATE UNIQUE INDEX messages_idempotency ON messages (session_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL AND status <> 'error';
-- Replies in flight, for cancel and for cleaning up after a dead worker.
CREATE INDEX messages_streaming ON messages (worker) WHERE status = 'streaming';

-- One row per stream, whatever its ending: the raw material of reports.
CREATE TABLE stream_metrics (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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
);
CREATE INDEX stream_metrics_created ON stream_metrics (created_at);
