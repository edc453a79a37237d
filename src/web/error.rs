//! The public endpoints' errors: one enum whose variants are the spec's error codes, with their
//! HTTP status and human message in one place.

use actix_web::http::StatusCode;

/// An error answered by a public endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicError {
    /// No site has this key (404 `unknown-site`).
    #[error("unknown-site")]
    UnknownSite,
    /// The request's origin is not one the site allows (403 `origin-not-allowed`).
    #[error("origin-not-allowed")]
    OriginNotAllowed,
    /// The body is larger than allowed (413 `payload-too-large`).
    #[error("payload-too-large")]
    PayloadTooLarge,
    /// The body is not what the endpoint accepts (400 `bad-request`).
    #[error("bad-request")]
    BadRequest,
    /// A Cap challenge token that is unknown, expired or already tried (403).
    #[error("challenge-invalid")]
    ChallengeInvalid,
    /// Solutions that do not solve the challenge (403).
    #[error("invalid-solution")]
    InvalidSolution,
    /// A failure on our side (500 `internal-error`); details go to the log, not the client.
    #[error("internal-error")]
    Internal,
}

impl PublicError {
    /// The spec's error code.
    pub fn code(self) -> &'static str {
        match self {
            PublicError::UnknownSite => "unknown-site",
            PublicError::OriginNotAllowed => "origin-not-allowed",
            PublicError::PayloadTooLarge => "payload-too-large",
            PublicError::BadRequest => "bad-request",
            PublicError::ChallengeInvalid => "challenge-invalid",
            PublicError::InvalidSolution => "invalid-solution",
            PublicError::Internal => "internal-error",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            PublicError::UnknownSite => StatusCode::NOT_FOUND,
            PublicError::OriginNotAllowed
            | PublicError::ChallengeInvalid
            | PublicError::InvalidSolution => StatusCode::FORBIDDEN,
            PublicError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PublicError::BadRequest => StatusCode::BAD_REQUEST,
            PublicError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A sentence for people (the Cap widget displays it as is).
    pub fn message(self) -> &'static str {
        match self {
            PublicError::UnknownSite => "Unknown site key",
            PublicError::OriginNotAllowed => "This site does not accept requests from this origin",
            PublicError::PayloadTooLarge => "Request body too large",
            PublicError::BadRequest => "Invalid body",
            PublicError::ChallengeInvalid => "Challenge invalid or expired",
            PublicError::InvalidSolution => "Invalid solution",
            PublicError::Internal => "Internal error, please try again",
        }
    }
}
