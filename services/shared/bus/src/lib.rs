//! rainlogs-bus
