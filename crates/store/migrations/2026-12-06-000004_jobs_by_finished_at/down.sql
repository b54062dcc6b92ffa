DROP INDEX jobs_owner_finished;
