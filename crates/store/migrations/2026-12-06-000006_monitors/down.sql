DROP TRIGGER jobs_monitor_check_ended ON jobs;
DROP FUNCTION monitor_check_ended();
DROP TABLE monitor_checks;
DROP INDEX jobs_monitor_finished;
ALTER TABLE jobs DROP COLUMN monitor_id;
DROP TABLE monitors;
