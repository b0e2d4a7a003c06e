//! Per-plan `settings.firewallEventsAdaptive` values (Cloudflare publishes only an example; these follow the
//! plan page's Security Events history: Free/Pro 24 h, Business 3 d, Enterprise up to 31 d look-back).

use serde_json::{Value, json};

use crate::scenario::Plan;
use crate::traffic::firewall::{FIREWALL_FIELDS, PAID_ONLY_FIELDS};

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NodeSettings {
    pub enabled: bool,
    pub max_duration: i64,
    pub not_older_than: i64,
    pub max_page_size: i64,
    pub max_number_of_fields: usize,
    pub available_fields: Vec<&'static str>,
}

pub(crate) fn firewall_settings(plan: Plan) -> NodeSettings {
    let (max_duration, not_older_than, max_page_size) = match plan {
        Plan::Free => (86_400, 86_400, 1_000),
        Plan::Pro => (86_400, 86_400, 5_000),
        Plan::Business => (259_200, 259_200, 10_000),
        Plan::Enterprise => (259_200, 2_678_400, 10_000),
    };
    let available_fields = FIREWALL_FIELDS
        .iter()
        .copied()
        .filter(|f| plan != Plan::Free || !PAID_ONLY_FIELDS.contains(f))
        .collect();
    NodeSettings {
        enabled: true,
        max_duration,
        not_older_than,
        max_page_size,
        max_number_of_fields: 30,
        available_fields,
    }
}

impl NodeSettings {
    pub fn field(&self, name: &str) -> Option<Value> {
        Some(match name {
            "enabled" => json!(self.enabled),
            "availableFields" => json!(self.available_fields),
            "maxDuration" => json!(self.max_duration),
            "maxNumberOfFields" => json!(self.max_number_of_fields),
            "maxPageSize" => json!(self.max_page_size),
            "notOlderThan" => json!(self.not_older_than),
            _ => return None,
        })
    }
}
