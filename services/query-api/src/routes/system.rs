//! Public routes: liveness and the key that signs checkpoints. Readiness and metrics are served
//! only on `telemetry.listen`: they show store paths and every tenant's zone ids.

use poem::web::Data;
use poem_openapi::payload::{Json, PlainText};
use poem_openapi::{Object, OpenApi};

use crate::error::{ApiError, ErrorCode};
use crate::state::SharedState;
use crate::views::ApiTags;

pub struct SystemApi;

/// The public half of the checkpoint signing key, in the C2SP signed-note verifier form
/// (docs/FORMAT.md §8.3): pin it to check checkpoints and proofs offline.
#[derive(Object)]
struct VerifierKey {
    /// `<name>+<key id>+<base64 key>`.
    verifier_key: String,
    key_name: String,
    /// 8 lowercase hex digits.
    key_id: String,
}

#[OpenApi(tag = "ApiTags::System")]
impl SystemApi {
    /// Liveness
    #[oai(path = "/health", method = "get", operation_id = "getHealth")]
    async fn health(&self) -> PlainText<&'static str> {
        PlainText("ok")
    }

    /// The public key checkpoints are signed with
    #[oai(
        path = "/api/v1/integrity/verifier-key",
        method = "get",
        operation_id = "getVerifierKey"
    )]
    async fn verifier_key(&self, state: Data<&SharedState>) -> Result<Json<VerifierKey>, ApiError> {
        let key = state.verifier.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::Unavailable,
                "this API process is not configured with the checkpoint key",
            )
        })?;
        Ok(Json(VerifierKey {
            verifier_key: key.to_string(),
            key_name: key.name().to_owned(),
            key_id: format!("{:08x}", key.key_id()),
        }))
    }
}
