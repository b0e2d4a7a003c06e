//! rainlogs-sealer
