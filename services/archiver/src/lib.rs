//! rainlogs-archiver
