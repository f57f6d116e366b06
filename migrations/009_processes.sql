-- 009_processes.sql: the processes that own replies, and when each last
-- said it was alive. Every chatd worker and every gateway keeps its row
-- fresh (core/sweep.c); the sweep marks 'interrupted' the replies of an
-- owner that no longer exists: on this host a pid that is dead, or alive
-- but started at another time (reused); on another host, a row whose
-- heartbeat stopped. Rows are small and rewritten every few seconds.
CREATE UNLOGGED TABLE processes (
    id           text PRIMARY KEY,            -- "host:pid", as messages.worker
    host         text NOT NULL,
    pid          integer NOT NULL,
    kind         text NOT NULL,               -- 'worker' or 'gateway'
    proc_start   bigint NOT NULL,             -- /proc/<pid>/stat start time (ticks after boot)
    started_at   timestamptz NOT NULL,        -- by the process's clock
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
