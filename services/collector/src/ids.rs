//! Deterministic event ids. The envelope id is the `Nats-Msg-Id`, so a publish retried after a lost
//! ack is stored once; a second close of the same window within JetStream's duplicate window is
//! refused the same way.

use rainlogs_schemas::events::Window;
use sha2::{Digest, Sha256};
use uuid::Uuid;

fn derive(parts: &[&[u8]]) -> Uuid {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part);
    }
    let digest = hasher.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Uuid::new_v8(bytes)
}

/// Id of batch `seq` of `attempt` of a window.
pub fn batch_id(zone: &str, dataset: &str, window: Window, attempt: Uuid, seq: u32) -> Uuid {
    derive(&[
        b"rainlogs batch.collected",
        zone.as_bytes(),
        dataset.as_bytes(),
        &window.start.to_be_bytes(),
        &window.end.to_be_bytes(),
        attempt.as_bytes(),
        &seq.to_be_bytes(),
    ])
}

/// Id of a window's close: one per window, whatever the attempt.
pub fn close_id(zone: &str, dataset: &str, window: Window) -> Uuid {
    derive(&[
        b"rainlogs batch.window_closed",
        zone.as_bytes(),
        dataset.as_bytes(),
        &window.start.to_be_bytes(),
        &window.end.to_be_bytes(),
    ])
}

/// Id of a `late` close of a window: one per attempt, since a window may gather several.
pub fn late_close_id(zone: &str, dataset: &str, window: Window, attempt: Uuid) -> Uuid {
    derive(&[
        b"rainlogs batch.window_closed late",
        zone.as_bytes(),
        dataset.as_bytes(),
        &window.start.to_be_bytes(),
        &window.end.to_be_bytes(),
        attempt.as_bytes(),
    ])
}

/// Id of a window's `archive.window_short`: one per window.
pub fn short_id(zone: &str, dataset: &str, window: Window) -> Uuid {
    derive(&[
        b"rainlogs archive.window_short",
        zone.as_bytes(),
        dataset.as_bytes(),
        &window.start.to_be_bytes(),
        &window.end.to_be_bytes(),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_differ_in_every_part() {
        let w = Window {
            start: 60,
            end: 120,
        };
        let a = Uuid::from_u128(1);
        let id = batch_id("z", "http_requests", w, a, 0);
        assert_eq!(id, batch_id("z", "http_requests", w, a, 0));
        assert_eq!(id.get_version_num(), 8);
        let others = [
            batch_id("y", "http_requests", w, a, 0),
            batch_id("z", "firewall_events", w, a, 0),
            batch_id(
                "z",
                "http_requests",
                Window {
                    start: 60,
                    end: 180,
                },
                a,
                0,
            ),
            batch_id("z", "http_requests", w, Uuid::from_u128(2), 0),
            batch_id("z", "http_requests", w, a, 1),
            close_id("z", "http_requests", w),
            late_close_id("z", "http_requests", w, a),
            short_id("z", "http_requests", w),
        ];
        assert!(others.iter().all(|o| *o != id));
        assert_eq!(close_id("z", "d", w), close_id("z", "d", w));
        assert_eq!(short_id("z", "d", w), short_id("z", "d", w));
        assert_ne!(short_id("z", "d", w), close_id("z", "d", w));
        assert_ne!(
            late_close_id("z", "d", w, a),
            late_close_id("z", "d", w, Uuid::from_u128(2))
        );
    }
}
