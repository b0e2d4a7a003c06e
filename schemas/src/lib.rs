//! rainlogs-schemas
