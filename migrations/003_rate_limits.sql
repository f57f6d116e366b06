-- 003_rate_limits.sql: request counters shared by every worker and host.
--
-- UNLOGGED: counting a request writes no WAL and waits for no fsync; after a
-- crash the counters start from zero, which only forgives some requests.
CREATE UNLOGGED TABLE rate_limits (
    key          text PRIMARY KEY,      -- "<class>:u:<user id>" or "<class>:ip:<address>"
    window_start timestamptz NOT NULL,
    hits         integer NOT NULL
);
CREATE INDEX rate_limits_window ON rate_limits (window_start);
