-- 002_reports.sql: summaries of the per-stream metrics rows.

-- Token usage per user and day (the OpenAI-compatible endpoint included).
CREATE VIEW usage_by_user AS
SELECT user_id,
       date_trunc('day', created_at) AS day,
       count(*)                      AS requests,
       sum(prompt_tokens)            AS prompt_tokens,
       sum(completion_tokens)        AS completion_tokens
FROM stream_metrics
GROUP BY user_id, date_trunc('day', created_at);

-- Streams per route and status over the last hour, with latency percentiles.
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
