//! API keys recently found valid, so an authenticated request costs no database round trip for
//! its key. What is cached is the stored row (never the secret); the presented secret is still
//! compared with the stored digest on every request, in constant time.
//!
//! Revocation and erasure must not wait for an entry to age out: the routes that revoke a key or
//! erase a tenant evict it in this process, and every API process evicts on the control stream's
//! `ctl.api_key_revoked` / `ctl.tenant_deleted` as it sees them (core NATS, so it is immediate but
//! may miss a message on a reconnect). The time to live bounds what a missed message can cost.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use rainlogs_bus::{Bus, CancellationToken};
use rainlogs_schemas::events::Role;
use rainlogs_schemas::{Envelope, Event};
use time::OffsetDateTime;

/// How long a key is trusted without looking at the database again, by default.
pub const DEFAULT_TTL: Duration = Duration::from_secs(10);
/// Entries kept at most; a full cache is emptied rather than grown (only valid keys get in, so
/// this is reached only by a tenant with very many keys in use).
const CAPACITY: usize = 100_000;

#[derive(Debug, Clone)]
pub struct CachedKey {
    pub tenant: String,
    pub role: Role,
    pub digest: Vec<u8>,
    pub expires_at: Option<OffsetDateTime>,
    cached_at: Instant,
}

impl CachedKey {
    pub fn new(
        tenant: String,
        role: Role,
        digest: Vec<u8>,
        expires_at: Option<OffsetDateTime>,
    ) -> Self {
        Self {
            tenant,
            role,
            digest,
            expires_at,
            cached_at: Instant::now(),
        }
    }
}

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<String, CachedKey>,
    /// Keys and tenants seen revoked or erased. The event can arrive before the database shows
    /// it, and a look-up in between must not put the key back in the cache.
    revoked: HashSet<String>,
    erased: HashSet<String>,
}

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            state: Mutex::default(),
        }
    }

    /// The key's row, if it was found valid less than the time to live ago.
    pub fn get(&self, key_id: &str) -> Option<CachedKey> {
        let state = self.state.lock().ok()?;
        state
            .keys
            .get(key_id)
            .filter(|k| k.cached_at.elapsed() < self.ttl)
            .cloned()
    }

    /// Remembers a key that was just found valid (known, genuine, not revoked, tenant live).
    pub fn insert(&self, key_id: &str, key: CachedKey) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            if state.revoked.contains(key_id) || state.erased.contains(&key.tenant) {
                return;
            }
            if state.keys.len() >= CAPACITY {
                state.keys.clear();
            }
            state.keys.insert(key_id.to_owned(), key);
        }
    }

    /// Drops a key that expired; it may never be cached again once revoked (`revoked`).
    pub fn evict_key(&self, key_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.keys.remove(key_id);
        }
    }

    pub fn revoke_key(&self, key_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.keys.remove(key_id);
            state.revoked.insert(key_id.to_owned());
        }
    }

    pub fn erase_tenant(&self, tenant: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.keys.retain(|_, k| k.tenant != tenant);
            state.erased.insert(tenant.to_owned());
        }
    }

    /// Applies one control event.
    fn observe(&self, envelope: &Envelope) {
        match &envelope.event {
            Event::ApiKeyRevoked(revoked) => self.revoke_key(&revoked.key_id),
            Event::TenantDeleted(_) => self.erase_tenant(&envelope.tenant),
            _ => {}
        }
    }

    /// Evicts on revocations and erasures published by any process, until `shutdown`.
    pub async fn follow(
        self: std::sync::Arc<Self>,
        bus: Bus,
        shutdown: CancellationToken,
    ) -> Result<(), rainlogs_bus::async_nats::SubscribeError> {
        let mut messages = bus.client.subscribe("rl.ctl.>").await?;
        loop {
            let message = tokio::select! {
                () = shutdown.cancelled() => return Ok(()),
                message = messages.next() => message,
            };
            let Some(message) = message else {
                // The subscription ended (connection closed for good): trust nothing cached.
                if let Ok(mut state) = self.state.lock() {
                    state.keys.clear();
                }
                return Ok(());
            };
            if let Ok(envelope) = Envelope::from_cbor(&message.payload) {
                self.observe(&envelope);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use rainlogs_schemas::Actor;
    use rainlogs_schemas::events::{ApiKeyRevoked, TenantDeleted};

    fn key(tenant: &str) -> CachedKey {
        CachedKey::new(tenant.into(), Role::Admin, vec![1; 32], None)
    }

    #[test]
    fn revocation_and_erasure_events_evict() {
        let cache = KeyCache::new(DEFAULT_TTL);
        cache.insert("k1", key("t1"));
        cache.insert("k2", key("t1"));
        cache.insert("k3", key("t2"));
        let revoked = Envelope::new(
            "t1",
            None,
            Actor::operator(),
            Event::ApiKeyRevoked(ApiKeyRevoked {
                key_id: "k1".into(),
            }),
        );
        cache.observe(&revoked);
        assert!(cache.get("k1").is_none());
        assert!(cache.get("k2").is_some());
        let erased = Envelope::new(
            "t1",
            None,
            Actor::operator(),
            Event::TenantDeleted(TenantDeleted {
                reason: "Art. 17".into(),
            }),
        );
        cache.observe(&erased);
        assert!(cache.get("k2").is_none());
        assert!(cache.get("k3").is_some(), "another tenant's key stays");
        // A look-up that still saw the rows valid cannot put them back.
        cache.insert("k1", key("t2"));
        cache.insert("k4", key("t1"));
        assert!(cache.get("k1").is_none() && cache.get("k4").is_none());
    }

    #[test]
    fn entries_age_out() {
        let cache = KeyCache::new(DEFAULT_TTL);
        let mut stale = key("t1");
        stale.cached_at = Instant::now().checked_sub(DEFAULT_TTL).unwrap();
        cache.insert("k1", stale);
        assert!(cache.get("k1").is_none());
    }
}
