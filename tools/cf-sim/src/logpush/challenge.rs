//! The ownership challenge: `POST /zones/{id}/logpush/ownership` writes a token into an S3 destination, and a job
//! for that destination is created only with that token. Cloudflare's token is a JWT bound to the zone and the
//! destination and valid for 7 days; the simulator's has the same shape, and is checked against the tokens it
//! issued (same zone, same `destination_conf` string, not expired on the simulated clock).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use time::OffsetDateTime;

use crate::lock;
use crate::rng::{hash_str, hash_words};
use crate::state::Shared;

/// Cloudflare: "The token expires after 7 days".
const TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// A token the simulator issued and wrote.
#[derive(Clone, Debug)]
pub(crate) struct Challenge {
    zone: String,
    destination_conf: String,
    expires: OffsetDateTime,
}

/// A token not yet written: `tag` names its file.
pub(crate) struct Issued {
    pub token: String,
    pub tag: u32,
    challenge: Challenge,
}

pub(crate) fn issue(shared: &Shared, zone: &str, destination_conf: &str) -> Issued {
    let n = {
        let mut state = lock(&shared.logpush);
        state.last_challenge += 1;
        state.last_challenge
    };
    let now = shared.now();
    let expires = now + TTL;
    let word = |i: u64| {
        hash_words(&[
            shared.seed,
            n,
            hash_str(zone),
            hash_str(destination_conf),
            i,
        ])
    };
    let claims = json!({
        "iss": "cf-sim",
        "object_type": "zone",
        "object_id": zone,
        "destination_fingerprint": format!("{:016x}", hash_str(destination_conf)),
        "iat": now.unix_timestamp(),
        "exp": expires.unix_timestamp(),
        "jti": n,
    });
    let signature: Vec<u8> = (0..4).flat_map(|i| word(i).to_be_bytes()).collect();
    let token = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    );
    Issued {
        token,
        tag: word(4) as u32,
        challenge: Challenge {
            zone: zone.to_owned(),
            destination_conf: destination_conf.to_owned(),
            expires,
        },
    }
}

/// The token's file was written: from now on it proves ownership.
pub(crate) fn remember(shared: &Shared, issued: Issued) {
    lock(&shared.logpush)
        .challenges
        .insert(issued.token, issued.challenge);
}

/// Whether `token` (surrounding whitespace ignored, as read from a file) was issued for this zone and exactly this
/// `destination_conf`, and has not expired.
pub(crate) fn verify(shared: &Shared, zone: &str, destination_conf: &str, token: &str) -> bool {
    let now = shared.now();
    lock(&shared.logpush)
        .challenges
        .get(token.trim())
        .is_some_and(|c| {
            c.zone == zone && c.destination_conf == destination_conf && c.expires > now
        })
}
