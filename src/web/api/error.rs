//! The management API's errors (reference §9.9): one enum whose variants are the codes, answered
//! as `{"error": "<code>", "message": "<text>"}` with the code's status. Bad input is always a
//! 4xx; only a failure of the server itself is a 5xx.

use std::borrow::Cow;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// A refused management request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `Authorization: Bearer` header.
    #[error("send a personal access token as Authorization: Bearer cpt_pat_…")]
    MissingToken,
    /// Not a token, or unknown, revoked or expired.
    #[error("the token is invalid, revoked or expired")]
    InvalidToken,
    /// A read token asked to write, or a site-bound token to act beyond its site.
    #[error("{0}")]
    InsufficientScope(&'static str),
    /// Unknown, or not visible to this token.
    #[error("not found")]
    NotFound,
    /// The body is not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    MalformedJson(String),
    /// A field has the wrong JSON type.
    #[error("{0}")]
    InvalidField(String),
    /// A required field is missing.
    #[error("{0}")]
    MissingField(String),
    /// Over the body limit.
    #[error("the body is larger than {} bytes", super::MAX_BODY_BYTES)]
    BodyTooLarge,
    /// A body that is neither unlabelled nor JSON.
    #[error("send JSON (Content-Type: application/json)")]
    UnsupportedContentType,
    /// Well-formed but refused by a rule; the code names the rule.
    #[error("{message}")]
    Unprocessable {
        /// The error code.
        code: &'static str,
        /// What was wrong, for a person.
        message: Cow<'static, str>,
    },
    /// The path exists with other methods.
    #[error("this path does not take this method")]
    MethodNotAllowed,
    /// A Caputchin route this server has no counterpart for.
    #[error("this Caputchin API route is not supported by a self-hosted forwarder")]
    NotSupported,
    /// Over the token's request budget.
    #[error("too many requests for this token: retry after {0} s")]
    RateLimited(u64),
    /// The server failed (logged where it happened).
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A 422 with this code and message.
    pub fn unprocessable(code: &'static str, message: impl Into<Cow<'static, str>>) -> ApiError {
        ApiError::Unprocessable {
            code,
            message: message.into(),
        }
    }

    /// The error code of the answer.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingToken => "missing-token",
            ApiError::InvalidToken => "invalid-token",
            ApiError::InsufficientScope(_) => "insufficient-scope",
            ApiError::NotFound => "not-found",
            ApiError::MalformedJson(_) => "malformed-json",
            ApiError::InvalidField(_) => "invalid-field",
            ApiError::MissingField(_) => "missing-field",
            ApiError::BodyTooLarge => "body-too-large",
            ApiError::UnsupportedContentType => "unsupported-content-type",
            ApiError::Unprocessable { code, .. } => code,
            ApiError::MethodNotAllowed => "method-not-allowed",
            ApiError::NotSupported => "not-supported",
            ApiError::RateLimited(_) => "rate-limited",
            ApiError::Internal => "internal-error",
        }
    }

    /// Logs a failure of the server and answers [`ApiError::Internal`].
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %error, "management API operation failed");
        ApiError::Internal
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::MissingToken | ApiError::InvalidToken => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MalformedJson(_) | ApiError::InvalidField(_) | ApiError::MissingField(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::NotSupported => StatusCode::NOT_IMPLEMENTED,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        builder.insert_header((header::CACHE_CONTROL, "no-store"));
        match self {
            ApiError::MissingToken | ApiError::InvalidToken => {
                builder.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::RateLimited(seconds) => {
                builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
            }
            _ => {}
        }
        builder.json(json!({"error": self.code(), "message": self.to_string()}))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> ApiError {
        ApiError::internal(e)
    }
}
