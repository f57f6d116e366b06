-- 012_hosts.sql: one row per host sharing the database, from the heartbeats
-- of its processes (009_processes.sql): which hosts are alive, how many of
-- their processes beat (within the sweep's 15 s, core/sweep.h), and how
-- long a host has been silent. The sweep judges another host's replies by
-- these heartbeats (core/sweep.c); hosts are named by host_id.
CREATE VIEW hosts AS
SELECT host,
       count(*) FILTER (WHERE kind = 'worker' AND heartbeat_at > now() - interval '15 seconds')
           AS workers,
       count(*) FILTER (WHERE kind = 'gateway' AND heartbeat_at > now() - interval '15 seconds')
           AS gateways,
       max(heartbeat_at)         AS heartbeat_at,
       now() - max(heartbeat_at) AS silent_for
  FROM processes
 GROUP BY host;
