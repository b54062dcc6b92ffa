ALTER TABLE gene_files DROP COLUMN upload_claim, DROP COLUMN upload_claimed_at;
