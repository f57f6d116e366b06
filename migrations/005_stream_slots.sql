-- 005_stream_slots.sql: the streams each user or anonymous address has open,
-- counted across every worker and host, so one client cannot hold them all.
--
-- A row is taken when a stream (a new reply or a resume) starts and deleted
-- when it ends. UNLOGGED: no WAL for this churn; after a crash the table is
-- empty, which frees every slot (their streams died with the server).
-- A worker that dies mid-stream leaves its rows: the master deletes them
-- by worker, and rows older than the longest possible stream are ignored.
CREATE UNLOGGED TABLE stream_slots (
    id         bigserial PRIMARY KEY,
    holder     text NOT NULL,            -- "u:<user id>" or "ip:<address>"
    worker     text NOT NULL,            -- "host:pid" of the process streaming
    started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_slots_holder ON stream_slots (holder, started_at);
CREATE INDEX stream_slots_worker ON stream_slots (worker);

-- Takes a slot for p_holder unless it already holds p_cap slots younger than
-- p_max_age_s seconds. Returns the slot id, or NULL at the cap. The advisory
-- lock makes count-then-insert atomic per holder, on any host.
CREATE FUNCTION stream_slot_take(p_holder text, p_worker text, p_cap integer,
                                 p_max_age_s integer) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    held integer;
    slot bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('stream_slots'), hashtext(p_holder));
    SELECT count(*) INTO held FROM stream_slots
     WHERE holder = p_holder AND started_at > now() - make_interval(secs => p_max_age_s);
    IF held >= p_cap THEN
        RETURN NULL;
    END IF;
    DELETE FROM stream_slots
     WHERE holder = p_holder AND started_at <= now() - make_interval(secs => p_max_age_s);
    INSERT INTO stream_slots (holder, worker) VALUES (p_holder, p_worker) RETURNING id INTO slot;
    RETURN slot;
END
$$;
