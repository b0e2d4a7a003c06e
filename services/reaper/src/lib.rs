//! rainlogs-reaper
