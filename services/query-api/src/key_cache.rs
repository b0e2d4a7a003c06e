//! API keys recently found valid, so an authenticated request costs no database round trip for
//! its key. What is cached is the stored row (never the secret); the presented secret is still
//! compared with the stored digest on every request, in constant time.
//!
//! Revocation and erasure do not wait for an entry to age out: every commit of the control
//! projection for a tenant evicts that tenant's keys (`projected::follow`), and a write through
//! this process evicts at once, when its projection shows it (`AppState::command`). A look-up that read the database before
//! such a change is not stored (it is stamped, as in `read_cache`). The time to live bounds
//! what anything unforeseen could cost.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rainlogs_db::Projection as _;

use crate::projections::ControlProjection;
use rainlogs_schemas::events::Role;
use time::OffsetDateTime;

use crate::projected::Watcher;

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

/// Taken before a database look-up; the row it read may be cached only if no change that could
/// concern it was seen since.
#[derive(Debug, Clone, Copy)]
pub struct Stamp(u64);

#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Whether control commits are being heard; nothing is cached while they are not.
    listening: bool,
    /// Counts every change seen.
    clock: u64,
    /// Clock at the last change of any tenant's keys (revocations are rare, so one clock for
    /// all tenants costs little and needs no tenant before the look-up).
    changed_at: u64,
    keys: HashMap<String, CachedKey>,
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

    /// Take before reading a key from the database.
    pub fn stamp(&self) -> Stamp {
        let Ok(mut state) = self.state.lock() else {
            return Stamp(0);
        };
        state.clock += 1;
        Stamp(state.clock)
    }

    /// Remembers a key found valid (known, genuine, not revoked, tenant live) by a look-up that
    /// started at `stamp`.
    pub fn insert(&self, stamp: Stamp, key_id: &str, key: CachedKey) {
        if self.ttl.is_zero() {
            return;
        }
        if let Ok(mut state) = self.state.lock() {
            if !state.listening || state.changed_at >= stamp.0 {
                return;
            }
            if state.keys.len() >= CAPACITY {
                state.keys.clear();
            }
            state.keys.insert(key_id.to_owned(), key);
        }
    }

    /// Drops a key that expired.
    pub fn evict_key(&self, key_id: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.keys.remove(key_id);
        }
    }

    /// Drops the tenant's keys, and keeps a look-up already under way from putting them back.
    fn evict_tenant(&self, tenant: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.clock += 1;
            state.changed_at = state.clock;
            state.keys.retain(|_, k| k.tenant != tenant);
        }
    }
}

impl Watcher for KeyCache {
    fn changed(&self, projection: &str, tenant: &str) {
        if projection == ControlProjection::NAME {
            self.evict_tenant(tenant);
        }
    }

    fn reset(&self, listening: bool) {
        if let Ok(mut state) = self.state.lock() {
            state.clock += 1;
            state.changed_at = state.clock;
            state.listening = listening;
            state.keys.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(tenant: &str) -> CachedKey {
        CachedKey::new(tenant.into(), Role::Admin, vec![1; 32], None)
    }

    fn listening() -> KeyCache {
        let cache = KeyCache::new(DEFAULT_TTL);
        cache.reset(true);
        cache
    }

    #[test]
    fn a_control_commit_evicts_the_tenants_keys_only() {
        let cache = listening();
        for (id, tenant) in [("k1", "t1"), ("k2", "t1"), ("k3", "t2")] {
            cache.insert(cache.stamp(), id, key(tenant));
        }
        cache.changed("audit", "t1");
        assert!(cache.get("k1").is_some(), "other projections change no key");
        cache.changed("control", "t1");
        assert!(cache.get("k1").is_none() && cache.get("k2").is_none());
        assert!(cache.get("k3").is_some(), "another tenant's key stays");
    }

    #[test]
    fn a_look_up_that_raced_a_change_is_not_cached() {
        let cache = listening();
        let stamp = cache.stamp();
        // The key is revoked while its row is being read.
        cache.changed("control", "t1");
        cache.insert(stamp, "k1", key("t1"));
        assert!(cache.get("k1").is_none());
        cache.insert(cache.stamp(), "k1", key("t1"));
        assert!(cache.get("k1").is_some());
    }

    #[test]
    fn nothing_is_cached_while_commits_are_not_heard() {
        let cache = KeyCache::new(DEFAULT_TTL);
        cache.insert(cache.stamp(), "k1", key("t1"));
        assert!(cache.get("k1").is_none());
        let cache = listening();
        cache.insert(cache.stamp(), "k1", key("t1"));
        cache.reset(false);
        assert!(cache.get("k1").is_none());
    }

    #[test]
    fn entries_age_out() {
        let cache = listening();
        let mut stale = key("t1");
        stale.cached_at = Instant::now().checked_sub(DEFAULT_TTL).unwrap();
        cache.insert(cache.stamp(), "k1", stale);
        assert!(cache.get("k1").is_none());
    }
}
