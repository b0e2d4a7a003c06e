//! rainlogs-cloudflare
