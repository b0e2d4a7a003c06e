//! Retention policies as the control stream sets them: how long the archives of each zone are
//! kept. The policy in force when a window is archived fixes its retain-until for good.

use std::collections::HashMap;
use std::time::Duration;

use rainlogs_schemas::{Envelope, Event};

const DAY: u64 = 24 * 60 * 60;

#[derive(Debug)]
pub struct RetentionPolicies {
    /// Used for tenants the control stream never described (the configured default).
    fallback: Duration,
    tenants: HashMap<String, u32>,
    /// Zone overrides, with the tenant that set them.
    zones: HashMap<String, (String, u32)>,
}

impl RetentionPolicies {
    pub fn new(fallback: Duration) -> Self {
        Self {
            fallback,
            tenants: HashMap::new(),
            zones: HashMap::new(),
        }
    }

    pub fn apply(&mut self, envelope: &Envelope) {
        let tenant = &envelope.tenant;
        match &envelope.event {
            Event::TenantCreated(e) => {
                self.tenants.insert(tenant.clone(), e.retention_days);
            }
            Event::RetentionSet(e) => match (&e.zone_id, e.days) {
                (None, Some(days)) => {
                    self.tenants.insert(tenant.clone(), days);
                }
                (Some(zone), Some(days)) => {
                    // A zone's override belongs to the tenant that set it first.
                    let entry = self
                        .zones
                        .entry(zone.clone())
                        .or_insert_with(|| (tenant.clone(), days));
                    if entry.0 == *tenant {
                        entry.1 = days;
                    }
                }
                (Some(zone), None) => {
                    if self.zones.get(zone).is_some_and(|(t, _)| t == tenant) {
                        self.zones.remove(zone);
                    }
                }
                (None, None) => {}
            },
            _ => {}
        }
    }

    /// How long after its window's end an archive of `tenant`'s `zone` is kept.
    pub fn retention(&self, tenant: &str, zone: &str) -> Duration {
        let days = match self.zones.get(zone) {
            Some((owner, days)) if owner == tenant => Some(*days),
            _ => self.tenants.get(tenant).copied(),
        };
        days.map_or(self.fallback, |d| Duration::from_secs(u64::from(d) * DAY))
    }
}

#[cfg(test)]
mod tests {
    use rainlogs_schemas::Actor;
    use rainlogs_schemas::events::{RetentionSet, TenantCreated};

    use super::*;

    fn event(tenant: &str, event: Event) -> Envelope {
        Envelope::new(tenant, None, Actor::service("test"), event)
    }

    fn set(tenant: &str, zone: Option<&str>, days: Option<u32>) -> Envelope {
        event(
            tenant,
            Event::RetentionSet(RetentionSet {
                zone_id: zone.map(str::to_owned),
                days,
            }),
        )
    }

    fn days(d: u64) -> Duration {
        Duration::from_secs(d * DAY)
    }

    #[test]
    fn zone_over_tenant_over_fallback() {
        let mut p = RetentionPolicies::new(days(395));
        assert_eq!(p.retention("acme", "z1"), days(395));
        p.apply(&event(
            "acme",
            Event::TenantCreated(TenantCreated {
                name: "Acme".into(),
                email: "a@acme.example".into(),
                retention_days: 400,
            }),
        ));
        assert_eq!(p.retention("acme", "z1"), days(400));
        p.apply(&set("acme", None, Some(500)));
        assert_eq!(p.retention("acme", "z1"), days(500));
        p.apply(&set("acme", Some("z1"), Some(730)));
        assert_eq!(p.retention("acme", "z1"), days(730));
        assert_eq!(p.retention("acme", "z2"), days(500));
        p.apply(&set("acme", Some("z1"), None));
        assert_eq!(p.retention("acme", "z1"), days(500));
    }

    #[test]
    fn another_tenant_cannot_touch_a_zone_override() {
        let mut p = RetentionPolicies::new(days(395));
        p.apply(&set("acme", Some("z1"), Some(730)));
        p.apply(&set("mallory", Some("z1"), Some(1)));
        p.apply(&set("mallory", Some("z1"), None));
        assert_eq!(p.retention("acme", "z1"), days(730));
        assert_eq!(p.retention("mallory", "z1"), days(395));
    }
}
