-- Hotel search matches a substring of the name or of the description, any
-- case (ILIKE '%q%'). Trigram indexes answer that without reading every row:
-- PostgreSQL combines the two with a BitmapOr. Queries shorter than three
-- characters have no trigram and still read the table.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX hotels_name_trgm ON hotels USING gin (name gin_trgm_ops);
CREATE INDEX hotels_description_trgm ON hotels USING gin (description gin_trgm_ops);
-- The listing's default order and the dashboard's (best rated first): a
-- search that matches many hotels reads them in this order and stops at the
-- page's end instead of sorting every match.
CREATE INDEX hotels_by_name ON hotels (name, id);
CREATE INDEX hotels_by_rating ON hotels (rating DESC NULLS LAST, id);
