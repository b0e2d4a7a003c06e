//! rainlogs-query-api
