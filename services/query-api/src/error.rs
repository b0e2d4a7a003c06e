//! The one error shape of the API: `{code, message, error_code, request_id}` with the HTTP status
//! in `code`. Handlers return [`ApiError`]; errors raised by poem itself (unknown route, wrong
//! method, bad content type, unparsable body) are rewritten into the same shape by
//! [`crate::middleware`].

use poem::http::StatusCode;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object};

use crate::request::current_request_id;

/// Machine-readable error codes. Clients branch on these, never on `message`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidRequest,
    Unauthenticated,
    InvalidCredentials,
    ApiKeyExpired,
    AccessDenied,
    RegistrationClosed,
    NotFound,
    CustomerNotFound,
    ZoneNotFound,
    JobNotFound,
    ApiKeyNotFound,
    CheckpointNotFound,
    JobHasNoArchive,
    ArchivePruned,
    /// No stored copy of an archive holds the bytes of its sealed hash, on any provider.
    ArchiveDamaged,
    MethodNotAllowed,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedMediaType,
    CustomerEmailExists,
    ZoneExists,
    ZonePaused,
    CloudflareRejected,
    /// The Logpush bucket given is malformed, not at a public address, or given with another
    /// method (or missing with `logpush_s3`).
    InvalidBucket,
    /// The Logpush bucket given at onboarding cannot be listed with the read keys given.
    BucketUnreadable,
    InvalidWindow,
    /// A search the document allows that cannot be run: not exactly one key, an address that
    /// is none, a block too broad, no time range or too long a one for an address.
    InvalidSearch,
    RetentionOutOfRange,
    CloudflareUnavailable,
    RateLimited,
    QuotaExceeded,
    ProjectionLagging,
    Unavailable,
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "INVALID_REQUEST",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::InvalidCredentials => "INVALID_CREDENTIALS",
            Self::ApiKeyExpired => "API_KEY_EXPIRED",
            Self::AccessDenied => "ACCESS_DENIED",
            Self::RegistrationClosed => "REGISTRATION_CLOSED",
            Self::NotFound => "NOT_FOUND",
            Self::CustomerNotFound => "CUSTOMER_NOT_FOUND",
            Self::ZoneNotFound => "ZONE_NOT_FOUND",
            Self::JobNotFound => "JOB_NOT_FOUND",
            Self::ApiKeyNotFound => "API_KEY_NOT_FOUND",
            Self::CheckpointNotFound => "CHECKPOINT_NOT_FOUND",
            Self::JobHasNoArchive => "JOB_HAS_NO_ARCHIVE",
            Self::ArchivePruned => "ARCHIVE_PRUNED",
            Self::ArchiveDamaged => "ARCHIVE_DAMAGED",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RequestTimeout => "REQUEST_TIMEOUT",
            Self::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            Self::CustomerEmailExists => "CUSTOMER_EMAIL_EXISTS",
            Self::ZoneExists => "ZONE_EXISTS",
            Self::ZonePaused => "ZONE_PAUSED",
            Self::CloudflareRejected => "CLOUDFLARE_REJECTED",
            Self::InvalidBucket => "INVALID_BUCKET",
            Self::BucketUnreadable => "BUCKET_UNREADABLE",
            Self::InvalidWindow => "INVALID_WINDOW",
            Self::InvalidSearch => "INVALID_SEARCH",
            Self::RetentionOutOfRange => "RETENTION_OUT_OF_RANGE",
            Self::CloudflareUnavailable => "CLOUDFLARE_UNAVAILABLE",
            Self::RateLimited => "RATE_LIMITED",
            Self::QuotaExceeded => "QUOTA_EXCEEDED",
            Self::ProjectionLagging => "PROJECTION_LAGGING",
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::Unauthenticated
            | Self::InvalidCredentials
            | Self::ApiKeyExpired
            // A revoked key or an erased tenant's key is a credential that no longer works.
            | Self::AccessDenied => StatusCode::UNAUTHORIZED,
            Self::RegistrationClosed => StatusCode::FORBIDDEN,
            Self::NotFound
            | Self::CustomerNotFound
            | Self::ZoneNotFound
            | Self::JobNotFound
            | Self::ApiKeyNotFound
            | Self::CheckpointNotFound
            | Self::JobHasNoArchive => StatusCode::NOT_FOUND,
            Self::ArchivePruned => StatusCode::GONE,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::CustomerEmailExists | Self::ZoneExists | Self::ZonePaused => StatusCode::CONFLICT,
            Self::CloudflareRejected
            | Self::InvalidBucket
            | Self::BucketUnreadable
            | Self::InvalidWindow
            | Self::InvalidSearch
            | Self::RetentionOutOfRange => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::CloudflareUnavailable => StatusCode::BAD_GATEWAY,
            Self::RateLimited | Self::QuotaExceeded => StatusCode::TOO_MANY_REQUESTS,
            Self::ProjectionLagging | Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::ArchiveDamaged | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code poem's own errors get, by status.
    pub fn for_status(status: StatusCode) -> Self {
        match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Self::InvalidRequest,
            StatusCode::UNAUTHORIZED => Self::Unauthenticated,
            StatusCode::FORBIDDEN => Self::AccessDenied,
            StatusCode::NOT_FOUND => Self::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => Self::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::REQUEST_TIMEOUT => Self::RequestTimeout,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            StatusCode::TOO_MANY_REQUESTS => Self::RateLimited,
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable,
            _ => Self::Internal,
        }
    }
}

/// Every error response body.
#[derive(Debug, Clone, Object, serde::Serialize, serde::Deserialize)]
pub struct ErrorBody {
    /// The HTTP status code.
    pub code: u16,
    /// What went wrong, for a human.
    pub message: String,
    /// Stable machine-readable code, e.g. `ZONE_NOT_FOUND`.
    pub error_code: String,
    /// Server-generated id of the request; also in the `X-Request-Id` header.
    pub request_id: String,
}

impl ErrorBody {
    pub fn new(status: StatusCode, error_code: &str, message: impl Into<String>) -> Self {
        Self {
            code: status.as_u16(),
            message: message.into(),
            error_code: error_code.to_owned(),
            request_id: current_request_id(),
        }
    }
}

/// An error answer of any operation.
#[derive(Debug, ApiResponse)]
pub enum ApiError {
    /// The request is malformed or fails validation (`INVALID_REQUEST`).
    #[oai(status = 400)]
    BadRequest(Json<ErrorBody>),
    /// Missing, unknown, expired (`API_KEY_EXPIRED`) or revoked (`ACCESS_DENIED`) credentials.
    #[oai(status = 401)]
    Unauthorized(Json<ErrorBody>),
    /// The caller's role does not allow this operation (`ACCESS_DENIED`), or registration is
    /// closed (`REGISTRATION_CLOSED`).
    #[oai(status = 403)]
    Forbidden(Json<ErrorBody>),
    /// The resource does not exist or belongs to another tenant.
    #[oai(status = 404)]
    NotFound(Json<ErrorBody>),
    /// The resource already exists (`CUSTOMER_EMAIL_EXISTS`, `ZONE_EXISTS`), or its state forbids
    /// the request (`ZONE_PAUSED`).
    #[oai(status = 409)]
    Conflict(Json<ErrorBody>),
    /// The archive was deleted under its retention policy (`ARCHIVE_PRUNED`).
    #[oai(status = 410)]
    Gone(Json<ErrorBody>),
    /// The request body is larger than the API accepts (`PAYLOAD_TOO_LARGE`).
    #[oai(status = 413)]
    PayloadTooLarge(Json<ErrorBody>),
    /// The body is not `application/json` (`UNSUPPORTED_MEDIA_TYPE`).
    #[oai(status = 415)]
    UnsupportedMediaType(Json<ErrorBody>),
    /// Well-formed, but it cannot be done: Cloudflare refused the token or zone
    /// (`CLOUDFLARE_REJECTED`), or a window is empty, in the future or beyond what Cloudflare
    /// keeps for the zone's method (`INVALID_WINDOW`), or a retention is outside the range this
    /// installation is configured for (`RETENTION_OUT_OF_RANGE`). A 400 means the request breaks the
    /// schema; a 422 means it follows the schema and the answer depends on data.
    #[oai(status = 422)]
    Unprocessable(Json<ErrorBody>),
    /// Rate limit (`RATE_LIMITED`, with `Retry-After`) or quota (`QUOTA_EXCEEDED`).
    #[oai(status = 429)]
    TooManyRequests(Json<ErrorBody>),
    /// An unexpected server error (`INTERNAL`), or no stored copy of an archive holds the bytes
    /// its entry sealed, on any provider (`ARCHIVE_DAMAGED`: an operator has to look).
    #[oai(status = 500)]
    Internal(Json<ErrorBody>),
    /// Cloudflare could not be reached (`CLOUDFLARE_UNAVAILABLE`).
    #[oai(status = 502)]
    BadGateway(Json<ErrorBody>),
    /// A dependency is unavailable, or a write is accepted but not yet visible (`PROJECTION_LAGGING`).
    #[oai(status = 503)]
    Unavailable(Json<ErrorBody>),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        let status = code.status();
        Self::with_status(status, code.as_str(), message)
    }

    pub fn with_status(status: StatusCode, error_code: &str, message: impl Into<String>) -> Self {
        let body = Json(ErrorBody::new(status, error_code, message));
        match status {
            StatusCode::BAD_REQUEST => Self::BadRequest(body),
            StatusCode::UNAUTHORIZED => Self::Unauthorized(body),
            StatusCode::FORBIDDEN => Self::Forbidden(body),
            StatusCode::NOT_FOUND => Self::NotFound(body),
            StatusCode::CONFLICT => Self::Conflict(body),
            StatusCode::GONE => Self::Gone(body),
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge(body),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType(body),
            StatusCode::UNPROCESSABLE_ENTITY => Self::Unprocessable(body),
            StatusCode::TOO_MANY_REQUESTS => Self::TooManyRequests(body),
            StatusCode::BAD_GATEWAY => Self::BadGateway(body),
            StatusCode::SERVICE_UNAVAILABLE => Self::Unavailable(body),
            _ => Self::Internal(body),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, message)
    }

    /// Logs the cause with the request id and answers 500 without echoing internals.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let request_id = current_request_id();
        tracing::error!(%request_id, error = %cause, "internal error");
        Self::new(
            ErrorCode::Internal,
            "internal error; quote the request id when reporting it",
        )
    }

    /// No stored copy of the archive under `key` holds the bytes of its sealed SHA-256, on any
    /// provider: the download cannot be served, and retrying will not help until an operator has
    /// looked.
    pub fn archive_damaged(key: &str, sealed_sha256: &[u8; 32]) -> Self {
        Self::new(
            ErrorCode::ArchiveDamaged,
            format!(
                "no intact copy of archive {key} was found: its stored bytes do not match its \
                 sealed SHA-256 {} on any provider. An operator should run rainlogs-verify for \
                 the zone and rainlogs store compare; quote the request id when reporting it",
                hex::encode(sealed_sha256)
            ),
        )
    }

    /// A dependency (NATS, PostgreSQL, the store) did not answer.
    pub fn unavailable(what: &str, cause: impl std::fmt::Display) -> Self {
        let request_id = current_request_id();
        tracing::warn!(%request_id, dependency = what, error = %cause, "dependency unavailable");
        Self::new(
            ErrorCode::Unavailable,
            format!("{what} is unavailable; try again shortly"),
        )
    }

    pub fn body(&self) -> &ErrorBody {
        match self {
            Self::BadRequest(b)
            | Self::Unauthorized(b)
            | Self::Forbidden(b)
            | Self::NotFound(b)
            | Self::Conflict(b)
            | Self::Gone(b)
            | Self::PayloadTooLarge(b)
            | Self::UnsupportedMediaType(b)
            | Self::Unprocessable(b)
            | Self::TooManyRequests(b)
            | Self::Internal(b)
            | Self::BadGateway(b)
            | Self::Unavailable(b) => &b.0,
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        Self::unavailable("the database", e)
    }
}
