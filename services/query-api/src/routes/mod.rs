//! One module per resource; each is a poem-openapi `OpenApi` impl.

pub mod api_keys;
pub mod audit_log;
pub mod customers;
pub mod jobs;
pub mod legal_holds;
pub mod login;
pub mod retention;
pub mod search;
pub mod system;
pub mod zones;
