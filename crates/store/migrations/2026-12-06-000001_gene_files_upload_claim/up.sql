-- One upload or start of a gene file at a time: an upload claims the file
-- (a random token and when) and releases it when its job is started or the
-- upload fails; a claim older than an hour is stale (a gateway that died
-- mid-upload).
ALTER TABLE gene_files ADD COLUMN upload_claim uuid, ADD COLUMN upload_claimed_at timestamptz;
