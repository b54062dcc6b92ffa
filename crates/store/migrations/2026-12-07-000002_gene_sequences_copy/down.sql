DROP TABLE gene_sequences_pending;
ALTER TABLE gene_sequences ADD CONSTRAINT gene_sequences_file_id_fkey FOREIGN KEY (file_id) REFERENCES gene_files (id) ON DELETE CASCADE;
CREATE UNIQUE INDEX gene_sequences_name ON gene_sequences (file_id, md5(name));
