//! rainlogs-collector
