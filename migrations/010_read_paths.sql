-- migrate: no-transaction
-- 010_read_paths.sql: server-side search of a user's sessions (titles and
-- message text), built without long locks on a populated database.
--
-- Applied statement by statement (the marker above; scripts/migrate): the
-- indexes are built CONCURRENTLY, so chatd keeps writing meanwhile. Every
-- statement is safe to repeat: a run that stopped half-way starts over.
--
-- The message text is indexed in a side table, not on messages: an index
-- over messages.content would make every update of a reply that touches
-- its text non-HOT. search_docs gets a row once a message's text is final
-- (a user's message when inserted, a reply when it leaves 'streaming'),
-- by triggers that cost nothing to the updates that do not qualify.
-- Anonymous sessions (user_id NULL) are never listed, so never indexed.

-- (user_id, tsvector) in one GIN index: a search intersects the user's
-- rows with the words' instead of filtering everyone's matches.
CREATE EXTENSION IF NOT EXISTS btree_gin;

CREATE TABLE IF NOT EXISTS search_docs (
    message_id uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    session_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    tsv        tsvector NOT NULL
);

-- The first 100,000 characters of a message (chatd's content limit): a
-- tsvector is at most 1 MB, and a text past it must not fail the write.
CREATE OR REPLACE FUNCTION search_doc_tsv(content text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT to_tsvector('simple', left(content, 100000)) $$;

-- Inserts: one set-based statement per INSERT (a bulk load stays fast).
CREATE OR REPLACE FUNCTION search_docs_inserted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_docs (message_id, session_id, user_id, tsv)
    SELECT n.id, n.session_id, s.user_id, search_doc_tsv(n.content)
    FROM new_rows n JOIN chat_sessions s ON s.id = n.session_id
    WHERE n.status <> 'streaming' AND n.content <> '' AND n.role <> 'system'
      AND s.user_id IS NOT NULL
    ON CONFLICT (message_id) DO UPDATE SET tsv = EXCLUDED.tsv;
    RETURN NULL;
END
$$;

-- Updates: only a reply whose text became final (the WHEN clause filters
-- in the executor; the appends of a streaming reply never call this).
CREATE OR REPLACE FUNCTION search_docs_updated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_docs (message_id, session_id, user_id, tsv)
    SELECT NEW.id, NEW.session_id, s.user_id, search_doc_tsv(NEW.content)
    FROM chat_sessions s WHERE s.id = NEW.session_id AND s.user_id IS NOT NULL
    ON CONFLICT (message_id) DO UPDATE SET tsv = EXCLUDED.tsv;
    RETURN NULL;
END
$$;

CREATE OR REPLACE TRIGGER messages_search_inserted
    AFTER INSERT ON messages REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION search_docs_inserted();
CREATE OR REPLACE TRIGGER messages_search_updated
    AFTER UPDATE OF content, status ON messages FOR EACH ROW
    WHEN (NEW.status <> 'streaming' AND NEW.content <> '' AND NEW.role <> 'system'
          AND (OLD.status = 'streaming' OR OLD.content IS DISTINCT FROM NEW.content))
    EXECUTE FUNCTION search_docs_updated();

-- The messages stored before the triggers existed. One statement that
-- reads messages (no lock that blocks chatd); rows the triggers wrote
-- meanwhile are kept.
INSERT INTO search_docs (message_id, session_id, user_id, tsv)
SELECT m.id, m.session_id, s.user_id, search_doc_tsv(m.content)
FROM messages m JOIN chat_sessions s ON s.id = m.session_id
WHERE m.status <> 'streaming' AND m.content <> '' AND m.role <> 'system'
  AND s.user_id IS NOT NULL
ON CONFLICT (message_id) DO NOTHING;

-- An interrupted CREATE INDEX CONCURRENTLY leaves an invalid index behind,
-- which IF NOT EXISTS would then take for done: drop it first.
SELECT format('DROP INDEX CONCURRENTLY IF EXISTS %I', c.relname)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
WHERE NOT i.indisvalid
  AND c.relname IN ('search_docs_user_tsv', 'chat_sessions_title_search')
\gexec

CREATE INDEX CONCURRENTLY IF NOT EXISTS search_docs_user_tsv
    ON search_docs USING gin (user_id, tsv);
CREATE INDEX CONCURRENTLY IF NOT EXISTS chat_sessions_title_search
    ON chat_sessions USING gin (user_id, search_doc_tsv(title)) WHERE user_id IS NOT NULL;
