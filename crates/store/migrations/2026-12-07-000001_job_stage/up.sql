-- What a running job is doing now, in words ("ECM p25: 120 of 265 curves"),
-- beside its progress fraction; shown while it runs.
ALTER TABLE jobs ADD COLUMN stage text;
