DROP INDEX gene_files_unparsed;
DROP INDEX gene_files_deleted;
ALTER TABLE gene_files DROP COLUMN deleted_at;
DROP INDEX jobs_kind_finished;
