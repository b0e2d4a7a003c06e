//! Turns SDK errors into `StoreError`s, keeping the HTTP status so callers can recognise a refused
//! precondition (412) or a refused delete (403) before classifying.

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::error::StoreError;

/// Error codes S3-compatible providers use when bytes do not match the declared checksum.
const CHECKSUM_CODES: [&str; 5] = [
    "BadDigest",
    "InvalidDigest",
    "XAmzContentChecksumMismatch",
    "XAmzContentSHA256Mismatch",
    "InvalidChecksum",
];

const TRANSIENT_CODES: [&str; 7] = [
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestTimeout",
    "RequestTimeTooSkewed",
    "ServiceUnavailable",
    "InternalError",
];

#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub status: Option<u16>,
    pub code: Option<String>,
    pub message: String,
    /// The request never got a complete answer (connect, timeout, broken response).
    pub no_answer: bool,
}

impl Failure {
    pub(crate) fn from_sdk<E>(error: SdkError<E>) -> Self
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let message = DisplayErrorContext(&error).to_string();
        match &error {
            SdkError::ServiceError(context) => Failure {
                status: Some(context.raw().status().as_u16()),
                code: context.err().code().map(str::to_owned),
                message: context
                    .err()
                    .message()
                    .map(str::to_owned)
                    .unwrap_or(message),
                no_answer: false,
            },
            SdkError::DispatchFailure(dispatch) => Failure {
                status: None,
                code: None,
                no_answer: !dispatch.is_user(),
                message,
            },
            SdkError::TimeoutError(_) | SdkError::ResponseError(_) => Failure {
                status: None,
                code: None,
                message,
                no_answer: true,
            },
            _ => Failure {
                status: None,
                code: None,
                message,
                no_answer: false,
            },
        }
    }

    pub(crate) fn is_status(&self, status: u16) -> bool {
        self.status == Some(status)
    }

    pub(crate) fn code_is(&self, code: &str) -> bool {
        self.code.as_deref() == Some(code)
    }

    pub(crate) fn is_checksum_refusal(&self) -> bool {
        self.code
            .as_deref()
            .is_some_and(|code| CHECKSUM_CODES.contains(&code))
    }

    pub(crate) fn is_transient(&self) -> bool {
        self.no_answer
            || self
                .status
                .is_some_and(|status| status >= 500 || status == 429 || status == 408)
            || self
                .code
                .as_deref()
                .is_some_and(|code| TRANSIENT_CODES.contains(&code))
    }

    pub(crate) fn into_error(self, operation: &'static str, key: &str) -> StoreError {
        let key = key.to_owned();
        let code = self.code.clone().unwrap_or_default();
        // A missing bucket is a configuration error, not a missing object.
        if code == "NoSuchBucket" {
            return StoreError::Provider {
                operation,
                key,
                status: self.status,
                code: self.code,
                detail: self.message,
            };
        }
        if self.is_status(404) || code == "NoSuchKey" || code == "NotFound" {
            return StoreError::NotFound { key };
        }
        if self.is_checksum_refusal() {
            return StoreError::ChecksumRejected {
                key,
                code,
                detail: self.message,
            };
        }
        if self.is_status(403) || code == "AccessDenied" {
            return StoreError::AccessDenied {
                operation,
                key,
                detail: self.message,
            };
        }
        if self.is_transient() {
            return StoreError::Unavailable {
                operation,
                key,
                detail: self.message,
            };
        }
        StoreError::Provider {
            operation,
            key,
            status: self.status,
            code: self.code,
            detail: self.message,
        }
    }
}
