//! rainlogs-config
