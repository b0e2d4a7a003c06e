//! The query-api's read models, each built from one stream by the projector of `rainlogs-db`.
//! Their tables are the API's own: no other service reads them.

mod chain;
mod control;
mod legal_holds;

pub use chain::ChainProjection;
pub use control::{AuditProjection, ControlProjection};
pub use legal_holds::LegalHoldListProjection;
