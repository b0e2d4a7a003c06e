//! Per-plan `settings.<node>` values. Cloudflare publishes only an example (for `firewallEventsAdaptive`); its
//! values follow the plan page's Security Events history (Free/Pro 24 h, Business 3 d, Enterprise up to 31 d
//! look-back). The grouped nodes' values are the simulator's reading of third-party reports (UNCONFIRMED).

use serde_json::{Value, json};

use super::groups::{GroupNode, HTTP_REQUESTS, LOGPUSH_HEALTH};
use crate::scenario::Plan;
use crate::traffic::firewall::{FIREWALL_FIELDS, PAID_ONLY_FIELDS};

const DAY: i64 = 86_400;

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NodeSettings {
    pub enabled: bool,
    pub max_duration: i64,
    pub not_older_than: i64,
    pub max_page_size: i64,
    pub max_number_of_fields: usize,
    pub available_fields: Vec<String>,
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
        .filter(|f| plan != Plan::Free || !PAID_ONLY_FIELDS.contains(f))
        .map(|f| (*f).to_owned())
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

/// `httpRequestsAdaptiveGroups`: third-party reports give a Free zone one day per query and eight days of
/// history; the paid plans' wider windows are the simulator's choice.
pub(crate) fn http_requests_groups_settings(plan: Plan) -> NodeSettings {
    let (max_duration, not_older_than) = match plan {
        Plan::Free | Plan::Pro => (DAY, 8 * DAY),
        Plan::Business | Plan::Enterprise => (3 * DAY, 31 * DAY),
    };
    group_settings(&HTTP_REQUESTS, max_duration, not_older_than)
}

/// `logpushHealthAdaptiveGroups`: the Logpush health dashboard shows up to 30 days, so the node serves 30 days back
/// and a 30-day window on every plan (Logpush itself is not plan-gated in the simulator).
pub(crate) fn logpush_health_settings(_plan: Plan) -> NodeSettings {
    group_settings(&LOGPUSH_HEALTH, 30 * DAY, 30 * DAY)
}

fn group_settings(node: &GroupNode, max_duration: i64, not_older_than: i64) -> NodeSettings {
    NodeSettings {
        enabled: true,
        max_duration,
        not_older_than,
        max_page_size: 10_000,
        max_number_of_fields: 30,
        available_fields: node.available_fields(),
    }
}

/// The settings of a node `settings { … }` knows, for `plan`.
pub(crate) fn node_settings(node: &str, plan: Plan) -> Option<NodeSettings> {
    match node {
        "firewallEventsAdaptive" => Some(firewall_settings(plan)),
        "httpRequestsAdaptiveGroups" => Some(http_requests_groups_settings(plan)),
        "logpushHealthAdaptiveGroups" => Some(logpush_health_settings(plan)),
        _ => None,
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
