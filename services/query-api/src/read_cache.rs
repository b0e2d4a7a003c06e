//! Read-model answers kept in memory until the projection they were read from changes.
//!
//! Every projection transaction notifies `rainlogs_db::PROJECTED_CHANNEL` at commit with
//! `<projection> <tenant>` for each tenant it touched; `projected::follow` passes that on, and
//! this cache drops the tenant's entries that depend on that projection. An entry is therefore
//! never older than the last commit this process has been told about, and a read that raced a
//! commit is not stored: each load is stamped before it reads, and is kept only if no change to
//! what it depends on was announced since.
//!
//! When the listener's connection is lost, everything cached is dropped and nothing is cached
//! until it listens again, so a missed notification cannot leave a stale answer behind. Writes
//! through this process also invalidate directly once their projection shows them, so
//! read-your-writes does not wait for the notification.
//!
//! Only read models written by projections may be cached here, and never time-dependent
//! aggregates such as "pulls in the last hour": those are computed per request.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use rainlogs_db::Projection as _;

use crate::projections::{ChainProjection, ControlProjection};

use crate::projected::Watcher;

/// Entries kept at most; a full cache is emptied rather than grown (the bound on memory, not a
/// tuning knob: a hit is worth a database round trip, a miss costs one).
const CAPACITY: usize = 20_000;

/// What an entry depends on: the zones (with their health) and the jobs of a tenant.
pub const ZONES_AND_JOBS: &[&str] = &[ControlProjection::NAME, ChainProjection::NAME];
/// Jobs only (sealed windows).
pub const JOBS: &[&str] = &[ChainProjection::NAME];
/// Tenants and zones only.
pub const CONTROL: &[&str] = &[ControlProjection::NAME];

type Value = Arc<dyn Any + Send + Sync>;

struct Entry {
    depends_on: &'static [&'static str],
    value: Value,
}

#[derive(Default)]
struct State {
    /// Whether the listener is listening; nothing is cached while it is not.
    listening: bool,
    /// Counts every announced change; a load is stamped with it before it reads.
    clock: u64,
    /// (projection, tenant) → clock at its last announced change.
    changed_at: HashMap<(String, String), u64>,
    /// Clock when everything was last dropped (listener lost or restarted).
    reset_at: u64,
    /// tenant → key → entry: a commit touches one tenant's entries only.
    entries: HashMap<String, HashMap<String, Entry>>,
    /// Entries over all tenants.
    count: usize,
}

impl State {
    fn unchanged_since(&self, stamp: u64, tenant: &str, depends_on: &[&str]) -> bool {
        self.listening
            && self.reset_at < stamp
            && depends_on.iter().all(|projection| {
                self.changed_at
                    .get(&((*projection).to_owned(), tenant.to_owned()))
                    .is_none_or(|at| *at < stamp)
            })
    }
}

#[derive(Default)]
pub struct ReadCache {
    state: Mutex<State>,
}

impl ReadCache {
    /// The cached answer for `key` of `tenant`, or `load`'s, which is kept when no projection in
    /// `depends_on` changed for the tenant while it ran.
    pub async fn get_or_load<T, E, F, Fut>(
        &self,
        tenant: &str,
        key: String,
        depends_on: &'static [&'static str],
        load: F,
    ) -> Result<Arc<T>, E>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let stamp = {
            let Ok(mut state) = self.state.lock() else {
                return load().await.map(Arc::new);
            };
            let cached = state
                .entries
                .get(tenant)
                .and_then(|entries| entries.get(&key))
                .map(|entry| entry.value.clone());
            if let Some(value) = cached.and_then(|v| v.downcast::<T>().ok()) {
                return Ok(value);
            }
            state.clock += 1;
            state.clock
        };
        let value = Arc::new(load().await?);
        if let Ok(mut state) = self.state.lock()
            && state.unchanged_since(stamp, tenant, depends_on)
        {
            if state.count >= CAPACITY {
                state.entries.clear();
                state.count = 0;
            }
            let entry = Entry {
                depends_on,
                value: value.clone(),
            };
            let replaced = state
                .entries
                .entry(tenant.to_owned())
                .or_default()
                .insert(key, entry);
            if replaced.is_none() {
                state.count += 1;
            }
        }
        Ok(value)
    }
}

impl Watcher for ReadCache {
    fn changed(&self, projection: &str, tenant: &str) {
        if let Ok(mut state) = self.state.lock() {
            state.clock += 1;
            let now = state.clock;
            state
                .changed_at
                .insert((projection.to_owned(), tenant.to_owned()), now);
            let State { entries, count, .. } = &mut *state;
            if let Some(entries) = entries.get_mut(tenant) {
                let before = entries.len();
                entries.retain(|_, entry| !entry.depends_on.contains(&projection));
                *count -= before - entries.len();
            }
        }
    }

    fn reset(&self, listening: bool) {
        if let Ok(mut state) = self.state.lock() {
            state.clock += 1;
            state.reset_at = state.clock;
            state.listening = listening;
            state.entries.clear();
            state.count = 0;
            state.changed_at.clear();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const CHAIN: &[&str] = &["chain"];

    async fn read(cache: &ReadCache, tenant: &str, value: u32) -> u32 {
        *cache
            .get_or_load(tenant, "jobs".into(), CHAIN, || async {
                Ok::<_, ()>(value)
            })
            .await
            .unwrap()
    }

    fn listening() -> ReadCache {
        let cache = ReadCache::default();
        cache.reset(true);
        cache
    }

    #[tokio::test]
    async fn nothing_is_cached_until_the_listener_listens() {
        let cache = ReadCache::default();
        assert_eq!(read(&cache, "t1", 1).await, 1);
        assert_eq!(read(&cache, "t1", 2).await, 2);
    }

    #[tokio::test]
    async fn an_answer_is_kept_until_its_projection_changes_for_its_tenant() {
        let cache = listening();
        assert_eq!(read(&cache, "t1", 1).await, 1);
        assert_eq!(read(&cache, "t1", 2).await, 1, "served from the cache");
        cache.changed("audit", "t1");
        cache.changed("chain", "t2");
        assert_eq!(
            read(&cache, "t1", 3).await,
            1,
            "other projections and tenants"
        );
        cache.changed("chain", "t1");
        assert_eq!(read(&cache, "t1", 4).await, 4);
    }

    #[tokio::test]
    async fn a_load_that_raced_a_change_is_not_kept() {
        let cache = listening();
        let value = cache
            .get_or_load("t1", "jobs".into(), CHAIN, || async {
                // The projection commits while this read is in flight.
                cache.changed("chain", "t1");
                Ok::<_, ()>(1)
            })
            .await
            .unwrap();
        assert_eq!(*value, 1, "the caller still gets what it read");
        assert_eq!(read(&cache, "t1", 2).await, 2, "but it was not cached");
    }

    #[tokio::test]
    async fn a_lost_listener_forgets_everything() {
        let cache = listening();
        read(&cache, "t1", 1).await;
        cache.reset(false);
        assert_eq!(read(&cache, "t1", 2).await, 2);
        assert_eq!(
            read(&cache, "t1", 3).await,
            3,
            "and caches nothing while away"
        );
        cache.reset(true);
        assert_eq!(read(&cache, "t1", 4).await, 4);
        assert_eq!(read(&cache, "t1", 5).await, 4);
    }

    #[tokio::test]
    async fn an_answer_of_another_type_under_the_same_key_is_a_miss() {
        let cache = listening();
        read(&cache, "t1", 1).await;
        let text = cache
            .get_or_load("t1", "jobs".into(), CHAIN, || async {
                Ok::<_, ()>("page".to_owned())
            })
            .await
            .unwrap();
        assert_eq!(*text, "page");
    }

    #[tokio::test]
    async fn a_full_cache_is_emptied_and_counts_what_a_commit_dropped() {
        let cache = listening();
        let load = |tenant: &'static str, n: usize| {
            let cache = &cache;
            async move {
                *cache
                    .get_or_load(tenant, format!("k{n}"), CHAIN, || async { Ok::<_, ()>(n) })
                    .await
                    .unwrap()
            }
        };
        for n in 0..10 {
            load("t1", n).await;
        }
        // Dropping t1's ten entries makes room for exactly ten more than otherwise.
        cache.changed("chain", "t1");
        for n in 0..CAPACITY {
            load("t2", n).await;
        }
        assert_eq!(load("t2", 0).await, 0);
        let hit = cache
            .get_or_load("t2", "k0".into(), CHAIN, || async {
                Ok::<_, ()>(usize::MAX)
            })
            .await
            .unwrap();
        assert_eq!(
            *hit, 0,
            "still cached: the dropped entries were counted out"
        );
        load("t3", 0).await;
        let miss = cache
            .get_or_load("t2", "k0".into(), CHAIN, || async {
                Ok::<_, ()>(usize::MAX)
            })
            .await
            .unwrap();
        assert_eq!(
            *miss,
            usize::MAX,
            "the entry past the capacity emptied the cache"
        );
    }
}
