ALTER TABLE cities DROP COLUMN found_at, DROP COLUMN list_path, DROP COLUMN source;
