//! The public endpoints' errors: one enum whose variants are the spec's error codes, with their
//! HTTP status and a message for people in one place. How an error is shaped (Cap JSON, form
//! JSON or an HTML page) is decided by the endpoint that answers it.

use actix_web::http::StatusCode;

use crate::submission::body::BodyError;

/// An error answered by a public endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicError {
    /// No site has this key (404 `unknown-site`).
    #[error("unknown-site")]
    UnknownSite,
    /// The site's forwarding is switched off (403 `forwarding-disabled`).
    #[error("forwarding-disabled")]
    ForwardingDisabled,
    /// The request's origin is not one the site allows (403 `origin-not-allowed`).
    #[error("origin-not-allowed")]
    OriginNotAllowed,
    /// Too many posts from this client for this site (429 `rate-limited`); retry after N seconds.
    #[error("rate-limited")]
    RateLimited(u64),
    /// The body is larger than allowed (413 `payload-too-large`).
    #[error("payload-too-large")]
    PayloadTooLarge,
    /// A content type the endpoint does not take (415 `unsupported-content-type`).
    #[error("unsupported-content-type")]
    UnsupportedContentType,
    /// A multipart part carrying a file (415 `file-upload-not-supported`).
    #[error("file-upload-not-supported")]
    FileUploadNotSupported,
    /// Malformed syntax, invalid UTF-8 or a non-string JSON value (400 `malformed-body`).
    #[error("malformed-body")]
    MalformedBody,
    /// More fields than allowed (422 `too-many-fields`).
    #[error("too-many-fields")]
    TooManyFields,
    /// A field name longer than allowed (422 `field-name-too-long`).
    #[error("field-name-too-long")]
    FieldNameTooLong,
    /// No verification token in the post (400 `missing-token`).
    #[error("missing-token")]
    MissingToken,
    /// A token not signed by this server (403 `invalid-token`).
    #[error("invalid-token")]
    InvalidToken,
    /// A token that expired or was already used (403 `timeout-or-duplicate`).
    #[error("timeout-or-duplicate")]
    TimeoutOrDuplicate,
    /// A token issued for another site (403 `site-mismatch`).
    #[error("site-mismatch")]
    SiteMismatch,
    /// A remote verifier could not give a clear answer (503 `verifier-unavailable`); fail closed.
    #[error("verifier-unavailable")]
    VerifierUnavailable,
    /// The webhook did not accept the submission (502 `delivery-failed`).
    #[error("delivery-failed")]
    DeliveryFailed,
    /// The body is not what the endpoint accepts (400 `bad-request`).
    #[error("bad-request")]
    BadRequest,
    /// A Cap challenge token that is unknown, expired or already tried (403).
    #[error("challenge-invalid")]
    ChallengeInvalid,
    /// Solutions that do not solve the challenge (403).
    #[error("invalid-solution")]
    InvalidSolution,
    /// The body did not arrive within `CAPUTCHIN_BODY_TIMEOUT_MS` (408 `request-timeout`).
    #[error("request-timeout")]
    RequestTimeout,
    /// A failure on our side (500 `internal-error`); details go to the log, not the client.
    #[error("internal-error")]
    Internal,
}

impl PublicError {
    /// The spec's error code.
    pub fn code(self) -> &'static str {
        match self {
            PublicError::UnknownSite => "unknown-site",
            PublicError::ForwardingDisabled => "forwarding-disabled",
            PublicError::OriginNotAllowed => "origin-not-allowed",
            PublicError::RateLimited(_) => "rate-limited",
            PublicError::PayloadTooLarge => "payload-too-large",
            PublicError::UnsupportedContentType => "unsupported-content-type",
            PublicError::FileUploadNotSupported => "file-upload-not-supported",
            PublicError::MalformedBody => "malformed-body",
            PublicError::TooManyFields => "too-many-fields",
            PublicError::FieldNameTooLong => "field-name-too-long",
            PublicError::MissingToken => "missing-token",
            PublicError::InvalidToken => "invalid-token",
            PublicError::TimeoutOrDuplicate => "timeout-or-duplicate",
            PublicError::SiteMismatch => "site-mismatch",
            PublicError::VerifierUnavailable => "verifier-unavailable",
            PublicError::DeliveryFailed => "delivery-failed",
            PublicError::BadRequest => "bad-request",
            PublicError::ChallengeInvalid => "challenge-invalid",
            PublicError::InvalidSolution => "invalid-solution",
            PublicError::RequestTimeout => "request-timeout",
            PublicError::Internal => "internal-error",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            PublicError::UnknownSite => StatusCode::NOT_FOUND,
            PublicError::ForwardingDisabled
            | PublicError::OriginNotAllowed
            | PublicError::InvalidToken
            | PublicError::TimeoutOrDuplicate
            | PublicError::SiteMismatch
            | PublicError::ChallengeInvalid
            | PublicError::InvalidSolution => StatusCode::FORBIDDEN,
            PublicError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            PublicError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            PublicError::UnsupportedContentType | PublicError::FileUploadNotSupported => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            PublicError::MalformedBody | PublicError::MissingToken | PublicError::BadRequest => {
                StatusCode::BAD_REQUEST
            }
            PublicError::TooManyFields | PublicError::FieldNameTooLong => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            PublicError::DeliveryFailed => StatusCode::BAD_GATEWAY,
            PublicError::VerifierUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            PublicError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            PublicError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A sentence for people: what happened and what they can do (the Cap widget shows it as is).
    pub fn message(self) -> &'static str {
        match self {
            PublicError::UnknownSite => "Unknown site key",
            PublicError::ForwardingDisabled => {
                "This form is not accepting submissions right now. Please contact the site owner another way."
            }
            PublicError::OriginNotAllowed => "This site does not accept requests from this origin",
            PublicError::RateLimited(_) => {
                "Too many submissions from your network. Please wait a minute and try again."
            }
            PublicError::PayloadTooLarge => "The submission is too large.",
            PublicError::UnsupportedContentType => "This kind of submission is not supported.",
            PublicError::FileUploadNotSupported => {
                "File uploads are not supported by this form. Please remove the file and send again."
            }
            PublicError::MalformedBody => "The submission could not be read.",
            PublicError::TooManyFields => "The submission has too many fields.",
            PublicError::FieldNameTooLong => "The submission has a field name that is too long.",
            PublicError::MissingToken => {
                "The verification did not run. Please enable JavaScript, complete the verification and send again."
            }
            PublicError::InvalidToken => {
                "The verification could not be checked. Please reload the page and try again."
            }
            PublicError::TimeoutOrDuplicate => {
                "The verification expired or was already used. Please reload the page and try again."
            }
            PublicError::SiteMismatch => {
                "The verification belongs to another form. Please reload the page and try again."
            }
            PublicError::VerifierUnavailable => {
                "The spam check could not be completed right now, so nothing was sent. Please try again in a few minutes."
            }
            PublicError::DeliveryFailed => {
                "Your message could not be delivered right now and was not kept. Please try again later or contact the site owner another way."
            }
            PublicError::BadRequest => "Invalid body",
            PublicError::ChallengeInvalid => "Challenge invalid or expired",
            PublicError::InvalidSolution => "Invalid solution",
            PublicError::RequestTimeout => {
                "The submission took too long to arrive. Please check your connection and send again."
            }
            PublicError::Internal => "Internal error, please try again",
        }
    }
}

impl From<&BodyError> for PublicError {
    fn from(e: &BodyError) -> PublicError {
        match e {
            BodyError::UnsupportedContentType => PublicError::UnsupportedContentType,
            BodyError::FileUpload => PublicError::FileUploadNotSupported,
            BodyError::Malformed => PublicError::MalformedBody,
            BodyError::TooManyFields => PublicError::TooManyFields,
            BodyError::NameTooLong => PublicError::FieldNameTooLong,
        }
    }
}
