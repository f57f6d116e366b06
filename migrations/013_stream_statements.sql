-- 013_stream_statements.sql: reply batches that write one row and nothing
-- else; what replaces the foreign key they no longer check.
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
