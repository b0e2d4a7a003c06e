//! Subject names, one place, so producers and consumers cannot drift apart.

pub fn control(tenant: &str) -> String {
    format!("rl.ctl.{tenant}")
}
pub fn batch(zone: &str) -> String {
    format!("rl.batch.{zone}")
}
pub fn push(zone: &str) -> String {
    format!("rl.push.{zone}")
}
pub fn archive(zone: &str) -> String {
    format!("rl.archive.{zone}")
}
pub fn chain(zone: &str) -> String {
    format!("rl.chain.{zone}")
}
pub fn audit(tenant: &str) -> String {
    format!("rl.audit.{tenant}")
}

/// A token is safe inside a subject when it cannot add levels or wildcards.
pub fn is_valid_token(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
