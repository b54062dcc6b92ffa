pub mod dashboard;
pub mod events;
pub mod genes;
pub mod health;
pub mod hotels;
pub mod jobs;
pub mod results;
pub mod url_checks;
