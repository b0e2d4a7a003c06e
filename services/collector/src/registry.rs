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
}

#[derive(Debug, Default)]
pub struct ZoneRegistry {
    zones: BTreeMap<String, ZoneEntry>,
}

impl ZoneRegistry {
    pub fn apply(&mut self, event: &Envelope) {
        match &event.event {
            Event::ZoneAdded(e) => {
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

    pub fn active(&self) -> impl Iterator<Item = &ZoneEntry> {
        self.zones.values().filter(|z| !z.paused)
    }

    pub fn get(&self, zone_id: &str) -> Option<&ZoneEntry> {
        self.zones.get(zone_id)
    }
}
