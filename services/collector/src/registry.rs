//! Zones to collect, as the control stream describes them.

use std::collections::BTreeMap;

use rainlogs_schemas::events::Method;
use rainlogs_schemas::{Envelope, Event};

#[derive(Clone, Debug, PartialEq)]
pub struct ZoneEntry {
    pub tenant: String,
    pub zone_id: String,
    pub method: Method,
    pub fields: String,
    pub paused: bool,
    pub sealed_token: Vec<u8>,
    pub token_key_id: String,
    /// Pull-now requests seen for the zone; a new one wakes the zone's task from any wait.
    pub pulls: u64,
    /// Logpush to the customer's bucket: the sealed source and the key id that sealed it.
    pub push_source: Option<(String, Vec<u8>)>,
}

#[derive(Debug, Default)]
pub struct ZoneRegistry {
    zones: BTreeMap<String, ZoneEntry>,
    /// The tenant each zone id was first added by. A zone's batches, cursor and chain live under
    /// its id alone, so it stays with that tenant even after removal: another tenant's
    /// `ZoneAdded` for it is ignored (the API refuses it first).
    owners: BTreeMap<String, String>,
}

impl ZoneRegistry {
    pub fn apply(&mut self, event: &Envelope) {
        match &event.event {
            Event::ZoneAdded(e) => {
                let owner = self
                    .owners
                    .entry(e.zone_id.clone())
                    .or_insert_with(|| event.tenant.clone());
                if *owner != event.tenant {
                    tracing::error!(zone = %e.zone_id, owner = %owner, tenant = %event.tenant,
                        "zone added by a tenant that does not own it; ignored");
                    return;
                }
                self.zones.insert(
                    e.zone_id.clone(),
                    ZoneEntry {
                        tenant: event.tenant.clone(),
                        zone_id: e.zone_id.clone(),
                        method: e.method,
                        fields: e.fields.clone(),
                        paused: false,
                        sealed_token: e.sealed_token.clone(),
                        token_key_id: e.token_key_id.clone(),
                        pulls: 0,
                        push_source: None,
                    },
                );
            }
            Event::ZoneChanged(e) => {
                // Only the owning tenant can change its zone.
                if let Some(zone) = self
                    .zones
                    .get_mut(&e.zone_id)
                    .filter(|z| z.tenant == event.tenant)
                {
                    if let Some(paused) = e.paused {
                        zone.paused = paused;
                    }
                    if let Some(method) = e.method {
                        zone.method = method;
                    }
                    if let Some(fields) = &e.fields {
                        zone.fields.clone_from(fields);
                    }
                    if let (Some(token), Some(key_id)) = (&e.sealed_token, &e.token_key_id) {
                        zone.sealed_token.clone_from(token);
                        zone.token_key_id.clone_from(key_id);
                    }
                }
            }
            Event::PushSourceSet(e) => {
                if let Some(zone) = self
                    .zones
                    .get_mut(&e.zone_id)
                    .filter(|z| z.tenant == event.tenant)
                {
                    zone.push_source = Some((e.key_id.clone(), e.sealed_source.clone()));
                }
            }
            Event::PullRequested(e) => {
                if let Some(zone) = self
                    .zones
                    .get_mut(&e.zone_id)
                    .filter(|z| z.tenant == event.tenant)
                {
                    zone.pulls += 1;
                }
            }
            // Only the owning tenant can remove its zone.
            Event::ZoneRemoved(e)
                if self
                    .zones
                    .get(&e.zone_id)
                    .is_some_and(|z| z.tenant == event.tenant) =>
            {
                self.zones.remove(&e.zone_id);
            }
            Event::TenantDeleted(_) => self.zones.retain(|_, z| z.tenant != event.tenant),
            _ => {}
        }
    }

    /// Every registered zone, paused ones included (a paused zone still closes its windows).
    pub fn all(&self) -> impl Iterator<Item = &ZoneEntry> {
        self.zones.values()
    }

    pub fn len(&self) -> usize {
        self.zones.len()
    }

    pub fn is_empty(&self) -> bool {
        self.zones.is_empty()
    }

    pub fn active(&self) -> impl Iterator<Item = &ZoneEntry> {
        self.zones.values().filter(|z| !z.paused)
    }

    pub fn get(&self, zone_id: &str) -> Option<&ZoneEntry> {
        self.zones.get(zone_id)
    }
}

#[cfg(test)]
mod tests {
    use rainlogs_schemas::events::{PullRequested, Window, ZoneAdded, ZoneRemoved};
    use rainlogs_schemas::{Actor, Envelope, Event};

    use super::*;

    fn added(tenant: &str, zone: &str) -> Envelope {
        Envelope::new(
            tenant,
            Some(zone.into()),
            Actor::service("test"),
            Event::ZoneAdded(ZoneAdded {
                zone_id: zone.into(),
                name: "example.com".into(),
                plan: "enterprise".into(),
                method: Method::Logpull,
                fields: "default".into(),
                sealed_token: vec![1, 2, 3],
                token_key_id: "k1".into(),
            }),
        )
    }

    #[test]
    fn a_zone_never_moves_to_another_tenant_even_after_removal() {
        let mut registry = ZoneRegistry::default();
        registry.apply(&added("acme", "z1"));
        registry.apply(&added("mallory", "z1"));
        assert_eq!(registry.get("z1").map(|z| z.tenant.as_str()), Some("acme"));
        registry.apply(&Envelope::new(
            "acme",
            Some("z1".into()),
            Actor::service("test"),
            Event::ZoneRemoved(ZoneRemoved {
                zone_id: "z1".into(),
            }),
        ));
        assert!(registry.get("z1").is_none());
        registry.apply(&added("mallory", "z1"));
        assert!(registry.get("z1").is_none(), "removed, still acme's");
        registry.apply(&added("acme", "z1"));
        assert_eq!(registry.get("z1").map(|z| z.tenant.as_str()), Some("acme"));
    }

    #[test]
    fn only_the_owner_can_request_a_pull() {
        let mut registry = ZoneRegistry::default();
        registry.apply(&added("acme", "z1"));
        let pull = |tenant: &str| {
            Envelope::new(
                tenant,
                Some("z1".into()),
                Actor::service("test"),
                Event::PullRequested(PullRequested {
                    zone_id: "z1".into(),
                    window: Window { start: 0, end: 60 },
                }),
            )
        };
        registry.apply(&pull("mallory"));
        assert_eq!(registry.get("z1").map(|z| z.pulls), Some(0));
        registry.apply(&pull("acme"));
        assert_eq!(registry.get("z1").map(|z| z.pulls), Some(1));
    }
}
