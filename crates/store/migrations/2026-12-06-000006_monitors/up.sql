-- Monitors: a URL checked every interval_s seconds. Each check is a
-- check_url job on the I/O queue (jobs.monitor_id), started by the workers'
-- scheduler when the monitor is due and no check of it is under way
-- (current_job): never two at once, and a check whose worker dies is
-- redelivered or failed like any job. When the job ends, the trigger below
-- records the check in monitor_checks and frees the monitor, in the
-- transaction that ends the job, so no ending is lost or counted twice.
CREATE TABLE monitors (
    id           uuid PRIMARY KEY,
    owner_id     uuid NOT NULL REFERENCES api_keys (id),
    url          text NOT NULL,
    -- the check_url job's parameters, in canonical form
    params       jsonb NOT NULL,
    interval_s   integer NOT NULL CHECK (interval_s > 0),
    paused       boolean NOT NULL DEFAULT false,
    next_run_at  timestamptz NOT NULL DEFAULT now(),
    current_job  uuid,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX monitors_owner ON monitors (owner_id, created_at);
CREATE INDEX monitors_due ON monitors (next_run_at) WHERE NOT paused AND current_job IS NULL;

-- No foreign key: a deleted monitor's check jobs stay until they expire.
ALTER TABLE jobs ADD COLUMN monitor_id uuid;
-- The sweeper removes check jobs an hour after they ended, oldest first.
CREATE INDEX jobs_monitor_finished ON jobs (finished_at) WHERE monitor_id IS NOT NULL AND finished_at IS NOT NULL;

CREATE TABLE monitor_checks (
    monitor_id  uuid NOT NULL REFERENCES monitors (id) ON DELETE CASCADE,
    checked_at  timestamptz NOT NULL,
    job_id      uuid NOT NULL,
    ok          boolean NOT NULL,
    -- the answer's status, when there was one
    status      integer,
    -- why not ok without an answer: the failure kind (dns, timeout, ...), or
    -- the job's status when the check itself did not run to its end
    error       text,
    total_ms    double precision,
    PRIMARY KEY (monitor_id, checked_at, job_id)
);
-- The retention sweeper removes checks older than 8 days, oldest first.
CREATE INDEX monitor_checks_checked_at ON monitor_checks (checked_at);

CREATE FUNCTION monitor_check_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO monitor_checks (monitor_id, checked_at, job_id, ok, status, error, total_ms)
    SELECT NEW.monitor_id, NEW.finished_at, NEW.id,
           NEW.status = 'succeeded' AND coalesce((NEW.result ->> 'ok')::boolean, false),
           (NEW.result ->> 'status')::integer,
           CASE WHEN NEW.status <> 'succeeded' THEN NEW.status ELSE NEW.result -> 'error' ->> 'kind' END,
           (NEW.result -> 'timings_ms' ->> 'total')::double precision
     WHERE EXISTS (SELECT 1 FROM monitors WHERE id = NEW.monitor_id);
    UPDATE monitors SET current_job = NULL WHERE id = NEW.monitor_id AND current_job = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_monitor_check_ended AFTER UPDATE OF finished_at ON jobs
    FOR EACH ROW WHEN (NEW.monitor_id IS NOT NULL AND OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL)
    EXECUTE FUNCTION monitor_check_ended();
