-- 013_stream_statements.sql: reply batches that write one row and nothing
-- else; what replaces the foreign key they no longer check; stream slots
-- taken without waiting for one another.
--
-- Applied in one transaction, with no scan or rewrite of a table: it
-- holds an ACCESS EXCLUSIVE lock on reply_chunks and stream_slots and a
-- SHARE ROW EXCLUSIVE lock on messages (the triggers) for milliseconds
-- once it has them, but waits for the transactions using them first.
--
-- A batch (core/store.c, S_REPLY_APPEND_MANY) was an insert into
-- reply_chunks plus a row lock on the reply's messages row: FOR SHARE in
-- the statement, and FOR KEY SHARE again from the foreign key's check (an
-- SPI query per row). A row lock writes the tuple's xmax: one more WAL
-- record and a dirtied page of messages per batch, for every reply in
-- flight, every second. Batches now only insert their row.
--
-- What the lock gave, and what keeps it now:
-- - A batch that comes after the reply's end is dropped: the batch's join
--   on status = 'streaming' still sees an end committed before it.
-- - A batch in flight when an end commits: the generator never ends its
--   own reply while one of its batches is in flight (core/engine.c waits
--   for it), so only an ending from elsewhere (the sweep, a stale resume,
--   an earlier process's interrupted replies) can race one, i.e. the end
--   of a generator judged gone. Its batch then lands after the fold: a
--   row no reader sees (reply_text reads the chunks of 'streaming' replies
--   only), deleted by reply_chunks_sweep() below. The stored reply ends
--   as the fold found it, one batch short, as its later batches would be.
-- - ON DELETE CASCADE: a deleted reply in flight (its session or user
--   deleted) takes its chunks with it through the trigger below.
ALTER TABLE reply_chunks DROP CONSTRAINT IF EXISTS reply_chunks_message_id_fkey;

CREATE OR REPLACE FUNCTION reply_chunks_gone() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM reply_chunks WHERE message_id = OLD.id;
    RETURN NULL;
END
$$;
-- Only replies in flight have chunks: other deletes cost the WHEN test.
CREATE OR REPLACE TRIGGER messages_reply_chunks_gone AFTER DELETE ON messages
    FOR EACH ROW WHEN (OLD.status = 'streaming') EXECUTE FUNCTION reply_chunks_gone();

-- Chunks of replies that are no longer in flight: a batch that raced an
-- ending from elsewhere, or one that committed after its reply's delete.
-- Run by the chatd master with the metrics retention (hourly). Returns how
-- many it deleted.
CREATE OR REPLACE FUNCTION reply_chunks_sweep() RETURNS bigint
LANGUAGE sql AS $$
    WITH d AS (DELETE FROM reply_chunks c
               WHERE NOT EXISTS (SELECT 1 FROM replies_in_flight f
                                 WHERE f.message_id = c.message_id)
               RETURNING 1)
    SELECT count(*) FROM d
$$;

-- ------------------------------------------------------------ stream slots
--
-- A stream's admission is now one statement (core/store.c, S_TURN_BEGIN):
-- the slot, the user's message, the reply, one commit. stream_slot_take()
-- as 005 wrote it holds a lock per holder until that commit, WAL flush
-- included, so one user's streams starting together were admitted one
-- after another. Slots are numbered instead, 1 to the cap per holder: a
-- taker locks one number it finds free (pg_try_advisory_xact_lock: never
-- waits) and checks, with a fresh snapshot, that no live slot holds it.
-- Two live slots can never share a number (the second taker would hold the
-- lock after the first committed, and see its row), so a holder never has
-- more than the cap, and takers of different numbers do not wait for each
-- other. A number locked by an admission still in flight counts as taken:
-- at the very cap, one that then fails may make another wait for the next
-- free slot (a 429 with Retry-After) that it would have had.
-- Rows from before this migration have no number: they count against the
-- cap until they end or age out.
ALTER TABLE stream_slots ADD COLUMN IF NOT EXISTS n integer;

CREATE OR REPLACE FUNCTION stream_slot_take(p_holder text, p_worker text, p_cap integer,
                                            p_max_age_s integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    live constant timestamptz := now() - make_interval(secs => p_max_age_s);
    taken integer[];
    unnumbered integer;
    slot bigint;
BEGIN
    SELECT coalesce(array_agg(n) FILTER (WHERE n IS NOT NULL), '{}'), count(*) FILTER (WHERE n IS NULL)
      INTO taken, unnumbered
      FROM stream_slots WHERE holder = p_holder AND started_at > live;
    FOR i IN 1 .. p_cap - unnumbered LOOP
        CONTINUE WHEN i = ANY (taken)
            OR NOT pg_try_advisory_xact_lock(hashtext('stream_slots'), hashtext(p_holder || '#' || i));
        -- Under the number's lock, with a fresh snapshot: a slot committed
        -- since the read above is seen here.
        CONTINUE WHEN EXISTS (SELECT 1 FROM stream_slots
                              WHERE holder = p_holder AND n = i AND started_at > live);
        DELETE FROM stream_slots WHERE holder = p_holder AND started_at <= live;
        INSERT INTO stream_slots (holder, worker, n) VALUES (p_holder, p_worker, i)
            RETURNING id INTO slot;
        RETURN slot;
    END LOOP;
    RETURN NULL;
END
$$;
