-- The reconciler's "abandoned" check reads running rows by start time: a
-- range scan of this small index instead of every unfinished row (a backlog
-- of 100,000 queued jobs made each pass take about 70 ms, once a second on
-- every worker replica).
CREATE INDEX jobs_running ON jobs (started_at) WHERE status = 'running';
