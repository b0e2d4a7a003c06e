use crate::envelope::{ENVELOPE_VERSION, Envelope};

/// An event could not be turned into CBOR bytes.
#[derive(Debug, thiserror::Error)]
#[error("cannot encode event as CBOR: {0}")]
pub struct EncodeError(String);

/// Bytes received from a subject are not an event this build understands.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("not a RainLogs event envelope: {0}")]
    Malformed(String),
    #[error("envelope version {found} is newer than this build understands ({ENVELOPE_VERSION})")]
    UnsupportedEnvelope { found: u8 },
    #[error(
        "event type {event_type} has schema version {found}; this build understands up to {known}"
    )]
    UnsupportedSchema {
        event_type: &'static str,
        found: u16,
        known: u16,
    },
    #[error("batch payload is damaged: {0}")]
    Payload(String),
}

impl Envelope {
    pub fn to_cbor(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(256);
        ciborium::into_writer(self, &mut out).map_err(|e| EncodeError(e.to_string()))?;
        Ok(out)
    }

    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        let envelope: Envelope =
            ciborium::from_reader(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if envelope.v > ENVELOPE_VERSION {
            return Err(DecodeError::UnsupportedEnvelope { found: envelope.v });
        }
        let known = envelope.event.schema_version();
        if envelope.schema > known {
            return Err(DecodeError::UnsupportedSchema {
                event_type: envelope.event.type_name(),
                found: envelope.schema,
                known,
            });
        }
        Ok(envelope)
    }
}
