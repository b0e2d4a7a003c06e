//! rainlogs-integrity
