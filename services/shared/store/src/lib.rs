//! rainlogs-store
