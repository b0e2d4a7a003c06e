//! Growing delays after failed sign-ins, per account and per client address.
//!
//! A few failures are free (people mistype); after that each failure blocks further attempts
//! for twice as long as the one before, up to a cap. While blocked, an attempt is refused with
//! 429 before the password is looked at, so a guess made during the block (even a right one)
//! tells the attacker nothing. The per-account cap is short (a stranger can delay a real user by
//! at most that much at a time); the per-address cap is long (one address guessing many accounts
//! is the attack). Failures are forgotten after a quiet period. Accounts are keyed by the email
//! as typed (lower-cased), whether or not it exists, so throttling is no oracle either.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How one kind of key is throttled.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    /// Failures allowed before the first block.
    pub free: u32,
    /// The first block; each further failure doubles it.
    pub first: Duration,
    pub cap: Duration,
}

/// Failures are forgotten this long after the last one.
const FORGET_AFTER: Duration = Duration::from_secs(15 * 60);
/// Entries beyond this many are swept of forgotten ones, so a flood of made-up emails cannot
/// grow memory without bound.
const SWEEP_ABOVE: usize = 100_000;

pub const ACCOUNT: Backoff = Backoff {
    free: 5,
    first: Duration::from_secs(1),
    cap: Duration::from_secs(30),
};

pub const ADDRESS: Backoff = Backoff {
    free: 20,
    first: Duration::from_secs(1),
    cap: Duration::from_secs(600),
};

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Instant,
}

struct Ledger<K> {
    backoff: Backoff,
    entries: Mutex<HashMap<K, Failures>>,
}

impl<K: Eq + Hash + Clone> Ledger<K> {
    fn new(backoff: Backoff) -> Self {
        Self {
            backoff,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<K, Failures>) -> R) -> R {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut entries)
    }

    /// How long `key` must still wait, if it is blocked.
    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        self.with(|entries| {
            entries
                .get(key)
                .filter(|f| f.blocked_until > now)
                .map(|f| f.blocked_until - now)
        })
    }

    fn failed(&self, key: &K, now: Instant) {
        let backoff = self.backoff;
        self.with(|entries| {
            if entries.len() >= SWEEP_ABOVE {
                entries.retain(|_, f| now.saturating_duration_since(f.last) < FORGET_AFTER);
            }
            let entry = entries.entry(key.clone()).or_insert(Failures {
                count: 0,
                last: now,
                blocked_until: now,
            });
            if now.saturating_duration_since(entry.last) >= FORGET_AFTER {
                entry.count = 0;
            }
            entry.count = entry.count.saturating_add(1);
            entry.last = now;
            if let Some(over) = entry.count.checked_sub(backoff.free)
                && over > 0
            {
                let factor = 1u32 << (over - 1).min(20);
                entry.blocked_until = now + backoff.first.saturating_mul(factor).min(backoff.cap);
            }
        });
    }

    fn forget(&self, key: &K) {
        self.with(|entries| entries.remove(key));
    }
}

pub struct LoginThrottle {
    accounts: Ledger<String>,
    addresses: Ledger<IpAddr>,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self::new(ACCOUNT, ADDRESS)
    }
}

fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

impl LoginThrottle {
    pub fn new(account: Backoff, address: Backoff) -> Self {
        Self {
            accounts: Ledger::new(account),
            addresses: Ledger::new(address),
        }
    }

    /// `Err(wait)` when the account or the address is blocked for `wait`.
    pub fn check(&self, email: &str, address: IpAddr) -> Result<(), Duration> {
        self.check_at(email, address, Instant::now())
    }

    fn check_at(&self, email: &str, address: IpAddr, now: Instant) -> Result<(), Duration> {
        let waits = [
            self.accounts.blocked(&account_key(email), now),
            self.addresses.blocked(&address, now),
        ];
        match waits.into_iter().flatten().max() {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    pub fn failed(&self, email: &str, address: IpAddr) {
        self.failed_at(email, address, Instant::now());
    }

    fn failed_at(&self, email: &str, address: IpAddr, now: Instant) {
        self.accounts.failed(&account_key(email), now);
        self.addresses.failed(&address, now);
    }

    /// A right password clears the account's failures. The address keeps its own: an attacker
    /// who owns one account must not be able to reset the counter of the address it guesses
    /// others' passwords from.
    pub fn succeeded(&self, email: &str) {
        self.accounts.forget(&account_key(email));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> IpAddr {
        IpAddr::from([192, 0, 2, n])
    }

    #[test]
    fn free_failures_then_doubling_blocks_up_to_the_cap() {
        let throttle = LoginThrottle::default();
        let t0 = Instant::now();
        for _ in 0..ACCOUNT.free {
            assert!(throttle.check_at("a@x.example", ip(1), t0).is_ok());
            throttle.failed_at("a@x.example", ip(1), t0);
        }
        assert!(throttle.check_at("a@x.example", ip(1), t0).is_ok());
        let mut now = t0;
        let mut blocks = Vec::new();
        for _ in 0..8 {
            throttle.failed_at("A@X.example ", ip(1), now);
            let wait = throttle.check_at("a@x.example", ip(1), now).unwrap_err();
            blocks.push(wait.as_secs());
            now += wait;
            assert!(throttle.check_at("a@x.example", ip(1), now).is_ok());
        }
        assert_eq!(blocks, [1, 2, 4, 8, 16, 30, 30, 30]);
    }

    #[test]
    fn a_blocked_account_is_blocked_from_every_address_and_others_are_not() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..=ACCOUNT.free {
            throttle.failed_at("victim@x.example", ip(u8::try_from(n).unwrap()), now);
        }
        assert!(throttle.check_at("victim@x.example", ip(200), now).is_err());
        assert!(throttle.check_at("other@x.example", ip(200), now).is_ok());
    }

    #[test]
    fn one_address_guessing_many_accounts_is_blocked() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for n in 0..=ADDRESS.free {
            throttle.failed_at(&format!("user{n}@x.example"), ip(9), now);
        }
        assert!(throttle.check_at("fresh@x.example", ip(9), now).is_err());
        assert!(throttle.check_at("fresh@x.example", ip(10), now).is_ok());
    }

    #[test]
    fn success_clears_the_account_not_the_address_and_quiet_time_forgets() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..=ADDRESS.free {
            throttle.failed_at("mine@x.example", ip(3), now);
        }
        throttle.succeeded("mine@x.example");
        assert!(
            throttle
                .accounts
                .blocked(&account_key("mine@x.example"), now)
                .is_none()
        );
        assert!(throttle.check_at("mine@x.example", ip(3), now).is_err());
        let later = now + FORGET_AFTER + ADDRESS.cap;
        assert!(throttle.check_at("mine@x.example", ip(3), later).is_ok());
        throttle.failed_at("mine@x.example", ip(3), later);
        assert!(
            throttle.check_at("mine@x.example", ip(3), later).is_ok(),
            "old failures were forgotten: one new failure is free again"
        );
    }
}
