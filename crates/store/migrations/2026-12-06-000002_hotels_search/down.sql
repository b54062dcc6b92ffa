DROP INDEX hotels_by_rating;
DROP INDEX hotels_by_name;
DROP INDEX hotels_description_trgm;
DROP INDEX hotels_name_trgm;
