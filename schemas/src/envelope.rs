use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::events::Event;

/// Version of the envelope layout itself (not of the payloads).
pub const ENVELOPE_VERSION: u8 = 1;

/// Who caused an event: a service, an API key, a dashboard user or an operator command.
///
/// Encoded as a text string `<kind>:<id>` so outside subscribers can read it without a schema.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Actor(pub String);

impl Actor {
    pub fn service(name: &str) -> Self {
        Self(format!("service:{name}"))
    }
    pub fn api_key(key_id: &str) -> Self {
        Self(format!("key:{key_id}"))
    }
    pub fn user(user_id: &str) -> Self {
        Self(format!("user:{user_id}"))
    }
    pub fn operator() -> Self {
        Self("operator:cli".to_owned())
    }
}

/// One message on an `rl.*` subject.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// Envelope layout version, [`ENVELOPE_VERSION`].
    pub v: u8,
    /// Unique per event; also the `Nats-Msg-Id`, so a retried publish is stored once.
    pub id: Uuid,
    /// Schema version of this event type's payload.
    pub schema: u16,
    pub tenant: String,
    pub zone: Option<String>,
    /// Unix time in nanoseconds when the event happened (not when it was stored).
    pub occurred_at_ns: i64,
    /// The event that directly caused this one.
    pub causation: Option<Uuid>,
    /// Shared by every event of one user request or one window's processing.
    pub correlation: Option<Uuid>,
    pub actor: Actor,
    /// `type` and `payload` keys.
    #[serde(flatten)]
    pub event: Event,
}

/// The system clock as Unix nanoseconds, the unit of every timestamp in events and entries
/// (0 before 1970, saturating after 2554).
pub fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Envelope {
    /// A new envelope with a fresh time-ordered id, stamped now.
    pub fn new(
        tenant: impl Into<String>,
        zone: Option<String>,
        actor: Actor,
        event: Event,
    ) -> Self {
        let now_ns = i64::try_from(unix_now_ns()).unwrap_or(i64::MAX);
        Self {
            v: ENVELOPE_VERSION,
            id: Uuid::now_v7(),
            schema: event.schema_version(),
            tenant: tenant.into(),
            zone,
            occurred_at_ns: now_ns,
            causation: None,
            correlation: None,
            actor,
            event,
        }
    }

    /// Marks this event as caused by `cause`, inheriting its correlation id.
    pub fn caused_by(mut self, cause: &Envelope) -> Self {
        self.causation = Some(cause.id);
        self.correlation = Some(cause.correlation.unwrap_or(cause.id));
        self
    }

    /// The id to send as `Nats-Msg-Id`.
    pub fn msg_id(&self) -> String {
        self.id.to_string()
    }
}
