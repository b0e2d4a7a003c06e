//! cf-sim
