//! rainlogs-db
