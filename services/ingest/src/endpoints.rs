//! Which zones may push which dataset, and with which secret (each dataset's job has its own):
//! the ingest service's own view of the control stream (`ctl.push_endpoint_set`, `ctl.zone_removed`, `ctl.tenant_deleted`), kept in memory.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use rainlogs_bus::{Bus, CancellationToken, control_feed};
use rainlogs_schemas::{Envelope, Event};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

#[derive(Clone)]
struct Endpoint {
    tenant: String,
    secret_sha256: [u8; 32],
}

/// Endpoints by zone, then dataset.
#[derive(Clone, Default)]
pub struct PushEndpoints {
    zones: Arc<RwLock<HashMap<String, HashMap<String, Endpoint>>>>,
}

/// Compared against when the zone has no endpoint, so an unknown zone costs what a wrong secret
/// costs.
const NO_SECRET: [u8; 32] = [0; 32];

impl PushEndpoints {
    /// Replays the control stream, then follows it until `shutdown`.
    pub async fn follow(
        bus: &Bus,
        shutdown: CancellationToken,
    ) -> Result<Self, rainlogs_bus::async_nats::Error> {
        let endpoints = Self::default();
        let mut feed = control_feed(bus).await?;
        feed.catch_up(|event| endpoints.apply(event)).await?;
        let following = endpoints.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = shutdown.cancelled() => return,
                    next = feed.next() => next,
                };
                match next {
                    Some(Ok(event)) => following.apply(&event),
                    Some(Err(e)) => tracing::error!(error = %e, "undecodable control event"),
                    None => {
                        tracing::error!(
                            "the control stream ended; push endpoints no longer change"
                        );
                        return;
                    }
                }
            }
        });
        Ok(endpoints)
    }

    pub fn apply(&self, envelope: &Envelope) {
        let mut zones = self.zones.write().unwrap_or_else(PoisonError::into_inner);
        match &envelope.event {
            Event::PushEndpointSet(set) => match <[u8; 32]>::try_from(set.secret_sha256.as_slice())
            {
                Ok(secret_sha256) => {
                    zones.entry(set.zone_id.clone()).or_default().insert(
                        set.dataset().to_owned(),
                        Endpoint {
                            tenant: envelope.tenant.clone(),
                            secret_sha256,
                        },
                    );
                }
                Err(_) => {
                    tracing::error!(zone = %set.zone_id, "push endpoint without a 32-byte secret digest; ignored");
                }
            },
            Event::ZoneRemoved(removed) => {
                zones.remove(&removed.zone_id);
            }
            Event::TenantDeleted(_) => zones.retain(|_, datasets| {
                datasets.retain(|_, e| e.tenant != envelope.tenant);
                !datasets.is_empty()
            }),
            _ => {}
        }
    }

    /// The zone's tenant when `secret` is the push secret of the zone's `dataset`. Costs the
    /// same for an unknown zone or dataset and a wrong secret, and compares in constant time.
    pub fn authorize(&self, zone: &str, dataset: &str, secret: &[u8]) -> Option<String> {
        let presented: [u8; 32] = Sha256::digest(secret).into();
        let zones = self.zones.read().unwrap_or_else(PoisonError::into_inner);
        let endpoint = zones.get(zone).and_then(|datasets| datasets.get(dataset));
        let expected = endpoint.map_or(&NO_SECRET, |e| &e.secret_sha256);
        let matches: bool = presented.ct_eq(expected).into();
        endpoint.filter(|_| matches).map(|e| e.tenant.clone())
    }
}

#[cfg(test)]
mod tests {
    use rainlogs_schemas::Actor;
    use rainlogs_schemas::events::{PushEndpointSet, ZoneRemoved};

    use super::*;

    const ZONE: &str = "023e105f4ecef8ad9ca31a8372d0c353";
    const HTTP: &str = "http_requests";
    const FIREWALL: &str = "firewall_events";

    fn set(secret: &[u8]) -> Envelope {
        set_for(None, secret)
    }

    fn set_for(dataset: Option<&str>, secret: &[u8]) -> Envelope {
        Envelope::new(
            "acme",
            Some(ZONE.into()),
            Actor::service("test"),
            Event::PushEndpointSet(PushEndpointSet {
                zone_id: ZONE.into(),
                secret_sha256: Sha256::digest(secret).to_vec(),
                dataset: dataset.map(str::to_owned),
            }),
        )
    }

    #[test]
    fn only_the_current_secret_of_a_known_zone_is_authorized() {
        let endpoints = PushEndpoints::default();
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"s1"), None, "unknown zone");
        endpoints.apply(&set(b"s1"));
        assert_eq!(
            endpoints.authorize(ZONE, HTTP, b"s1").as_deref(),
            Some("acme")
        );
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"s2"), None);
        assert_eq!(endpoints.authorize("other", HTTP, b"s1"), None);
        endpoints.apply(&set(b"s2"));
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"s1"), None, "rotated");
        assert!(endpoints.authorize(ZONE, HTTP, b"s2").is_some());
        endpoints.apply(&Envelope::new(
            "acme",
            Some(ZONE.into()),
            Actor::service("test"),
            Event::ZoneRemoved(ZoneRemoved {
                zone_id: ZONE.into(),
            }),
        ));
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"s2"), None, "removed");
    }

    #[test]
    fn each_dataset_pushes_with_its_own_secret() {
        let endpoints = PushEndpoints::default();
        endpoints.apply(&set(b"http"));
        endpoints.apply(&set_for(Some(FIREWALL), b"firewall"));
        assert!(endpoints.authorize(ZONE, HTTP, b"http").is_some());
        assert!(endpoints.authorize(ZONE, FIREWALL, b"firewall").is_some());
        assert_eq!(endpoints.authorize(ZONE, FIREWALL, b"http"), None);
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"firewall"), None);
        // A new firewall secret leaves the http_requests one as it was.
        endpoints.apply(&set_for(Some(FIREWALL), b"firewall2"));
        assert!(endpoints.authorize(ZONE, HTTP, b"http").is_some());
        assert_eq!(endpoints.authorize(ZONE, FIREWALL, b"firewall"), None);
        endpoints.apply(&Envelope::new(
            "acme",
            Some(ZONE.into()),
            Actor::service("test"),
            Event::TenantDeleted(rainlogs_schemas::events::TenantDeleted {
                reason: "gone".into(),
            }),
        ));
        assert_eq!(endpoints.authorize(ZONE, FIREWALL, b"firewall2"), None);
        assert_eq!(endpoints.authorize(ZONE, HTTP, b"http"), None);
    }
}
