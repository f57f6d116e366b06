-- 008_ownership.sql: who may use a Socket.IO room, and which address an
-- anonymous session belongs to.
--
-- Rooms (seed 001): a room that an authenticated user streams into
-- (POST /openai/chatCompletion/stream/start, or stream-chat on a socket
-- authenticated by a token) belongs to that user from then on. The first
-- authenticated use claims it atomically (INSERT ... ON CONFLICT): two
-- users racing for one name get one owner, on every gateway and host.
-- Only sockets authenticated as the owner may join the room or stream into
-- it; rooms nobody claimed stay open to anyone (seed 001's anonymous demo).
-- A deleted user's rooms are free again.
CREATE TABLE room_owners (
    room       text PRIMARY KEY CHECK (length(room) BETWEEN 1 AND 128),
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    used_at    timestamptz NOT NULL DEFAULT now()   -- the owner's last stream
);
CREATE INDEX room_owners_user ON room_owners (user_id);

-- Anonymous sessions (seed 003): the client address that opened one. A
-- session named by a string was already scoped (external_id is
-- "<address>/<name>"); one addressed by its UUID is now too: another
-- address gets 404 like any stranger. Sessions of users have none.
ALTER TABLE chat_sessions ADD COLUMN anon_scope text CHECK (length(anon_scope) <= 64);
-- Named anonymous sessions carry their address in their name. Unnamed ones
-- opened before this migration have no known address: no one reaches them
-- by UUID any more (they were reachable by anyone).
UPDATE chat_sessions SET anon_scope = split_part(external_id, '/', 1)
 WHERE user_id IS NULL AND external_id LIKE '%/%'
   AND length(split_part(external_id, '/', 1)) BETWEEN 1 AND 64;
