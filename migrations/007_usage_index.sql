-- 009_usage_index.sql: the daily token budget's read (daily_token_budget).
--
-- Before each generation of a user with a budget, chatd sums that user's
-- prompt and completion tokens since midnight UTC in stream_metrics. This
-- index makes it a range scan of one user's rows of the day, index-only
-- (the counts are included; the table is insert-only, so the visibility map
-- stays current), instead of a scan of the day's rows of every user.
-- Anonymous streams (user_id NULL) are never summed: not indexed.
--
-- A plain CREATE INDEX (migrations run in a transaction): it blocks inserts
-- into stream_metrics while it builds, which is short for a table of this
-- size; a very large deployment may create it CONCURRENTLY by hand first,
-- under the same name, and this file then does nothing.
CREATE INDEX IF NOT EXISTS stream_metrics_user_day
    ON stream_metrics (user_id, created_at)
    INCLUDE (prompt_tokens, completion_tokens)
    WHERE user_id IS NOT NULL;
