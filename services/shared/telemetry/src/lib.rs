//! rainlogs-telemetry
