DROP TABLE selections;
DROP TABLE hotels;
DROP TABLE cities;
