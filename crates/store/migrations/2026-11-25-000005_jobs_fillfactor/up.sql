-- Room on every heap page for a newer version of its rows: updates that
-- change no indexed column (published_at, progress, result) can then be HOT
-- (no new entries in the table's seven indexes). Applies to pages written
-- from now on.
ALTER TABLE jobs SET (fillfactor = 70);
