//! Deterministic event ids, so that a re-run after a crash publishes the same `Nats-Msg-Id` and
//! JetStream stores the outcome of a window once.

use rainlogs_schemas::events::Window;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// Domain separation for the outcome id of a window.
const WINDOW_OUTCOME_ID: &[u8] = b"rainlogs archive outcome v1\n";
/// Domain separation for the outcome id of a late attempt.
const LATE_OUTCOME_ID: &[u8] = b"rainlogs late archive outcome v1\n";

/// The id of the one `archive.*` event a window gets, whichever outcome it has: a UUIDv8 from
/// SHA-256("rainlogs archive outcome v1\n" ∥ zone ∥ 0x0A ∥ dataset ∥ 0x0A ∥ i64be start ∥ i64be end).
pub fn window_outcome_id(zone: &str, dataset: &str, window: &Window) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(WINDOW_OUTCOME_ID);
    hasher.update(zone.as_bytes());
    hasher.update(b"\n");
    hasher.update(dataset.as_bytes());
    hasher.update(b"\n");
    hasher.update(window.start.to_be_bytes());
    hasher.update(window.end.to_be_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Id of the outcome of a `late` close: one per late attempt.
pub fn late_outcome_id(zone: &str, dataset: &str, attempt: Uuid) -> Uuid {
    let mut hasher = Sha256::new();
    hasher.update(LATE_OUTCOME_ID);
    hasher.update(zone.as_bytes());
    hasher.update(b"\n");
    hasher.update(dataset.as_bytes());
    hasher.update(b"\n");
    hasher.update(attempt.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_window_same_id_any_other_field_changes_it() {
        let w = Window {
            start: 60,
            end: 120,
        };
        let id = window_outcome_id("z1", "http_requests", &w);
        assert_eq!(id, window_outcome_id("z1", "http_requests", &w));
        assert_eq!(id.get_version_num(), 8);
        assert_ne!(id, window_outcome_id("z2", "http_requests", &w));
        assert_ne!(id, window_outcome_id("z1", "firewall_events", &w));
        assert_ne!(
            id,
            window_outcome_id(
                "z1",
                "http_requests",
                &Window {
                    start: 60,
                    end: 121
                }
            )
        );
        // The separator keeps (zone, dataset) pairs from sliding into each other.
        assert_ne!(
            window_outcome_id("ab", "c", &w),
            window_outcome_id("a", "bc", &w)
        );
    }
}
