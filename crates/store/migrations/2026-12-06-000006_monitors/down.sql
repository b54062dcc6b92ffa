DROP TRIGGER jobs_monitor_check_ended ON jobs;
DROP FUNCTION monitor_check_ended();
DROP TABLE monitor_checks;
ALTER TABLE jobs DROP COLUMN monitor_id;
DROP TABLE monitors;
