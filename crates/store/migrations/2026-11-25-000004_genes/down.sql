DROP TABLE gene_sequences;
DROP TABLE gene_files;
