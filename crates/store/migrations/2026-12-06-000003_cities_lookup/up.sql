-- A city's hotel list page on a site, found through the site's typeahead
-- search by a scrape, kept so later scrapes of the city ask no more: the
-- site (the scrape profile's name) and the page's path on it.
ALTER TABLE cities ADD COLUMN source text, ADD COLUMN list_path text, ADD COLUMN found_at timestamptz;
