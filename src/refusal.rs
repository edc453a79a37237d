//! The public endpoints' refusals: one enum whose variants are the spec's error codes (SPEC §2,
//! §3, §8, §13), with a message for people, in one place. How a refusal is answered on the wire
//! (its HTTP status, HTML or JSON, Cap's, Caputchin's widget's or siteverify's shape) is the web
//! layer's (`web::error`).

use crate::fields::BodyError;

/// A refusal answered by a public endpoint: the form endpoint, Cap's endpoints, the endpoints of
/// Caputchin's widget or siteverify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No site has this key (404 `unknown-site`).
    #[error("unknown-site")]
    UnknownSite,
    /// The site's key is switched off (403 `site-disabled`, SPEC §12): no challenge, redeem,
    /// form post or siteverify.
    #[error("site-disabled")]
    SiteDisabled,
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
    /// A `verify/pass` whose `platform.sessionId` is missing or is not the one `verify/start`
    /// gave with its challenge (403 `invalid-session`, SPEC §13).
    #[error("invalid-session")]
    InvalidSession,
    /// The body did not arrive within `CAPUTCHIN_BODY_TIMEOUT_MS` (408 `request-timeout`).
    #[error("request-timeout")]
    RequestTimeout,
    /// Siteverify without a secret (`missing-input-secret`).
    #[error("missing-input-secret")]
    MissingInputSecret,
    /// Siteverify with a secret no site has (`invalid-input-secret`).
    #[error("invalid-input-secret")]
    InvalidInputSecret,
    /// Siteverify without a token (`missing-input-response`).
    #[error("missing-input-response")]
    MissingInputResponse,
    /// Siteverify with a token not signed by this server (`invalid-input-response`).
    #[error("invalid-input-response")]
    InvalidInputResponse,
    /// A failure on our side (500 `internal-error`); details go to the log, not the client.
    #[error("internal-error")]
    Internal,
}

impl Refusal {
    /// The spec's error code.
    pub fn code(self) -> &'static str {
        match self {
            Refusal::UnknownSite => "unknown-site",
            Refusal::SiteDisabled => "site-disabled",
            Refusal::ForwardingDisabled => "forwarding-disabled",
            Refusal::OriginNotAllowed => "origin-not-allowed",
            Refusal::RateLimited(_) => "rate-limited",
            Refusal::PayloadTooLarge => "payload-too-large",
            Refusal::UnsupportedContentType => "unsupported-content-type",
            Refusal::FileUploadNotSupported => "file-upload-not-supported",
            Refusal::MalformedBody => "malformed-body",
            Refusal::TooManyFields => "too-many-fields",
            Refusal::FieldNameTooLong => "field-name-too-long",
            Refusal::MissingToken => "missing-token",
            Refusal::InvalidToken => "invalid-token",
            Refusal::TimeoutOrDuplicate => "timeout-or-duplicate",
            Refusal::SiteMismatch => "site-mismatch",
            Refusal::VerifierUnavailable => "verifier-unavailable",
            Refusal::DeliveryFailed => "delivery-failed",
            Refusal::BadRequest => "bad-request",
            Refusal::ChallengeInvalid => "challenge-invalid",
            Refusal::InvalidSolution => "invalid-solution",
            Refusal::InvalidSession => "invalid-session",
            Refusal::RequestTimeout => "request-timeout",
            Refusal::MissingInputSecret => "missing-input-secret",
            Refusal::InvalidInputSecret => "invalid-input-secret",
            Refusal::MissingInputResponse => "missing-input-response",
            Refusal::InvalidInputResponse => "invalid-input-response",
            Refusal::Internal => "internal-error",
        }
    }

    /// A sentence for people: what happened and what they can do (the Cap widget shows it as is).
    pub fn message(self) -> &'static str {
        match self {
            Refusal::UnknownSite => "Unknown site key",
            Refusal::SiteDisabled => {
                "This form is switched off by its owner. Please contact the site owner another way."
            }
            Refusal::ForwardingDisabled => {
                "This form is not accepting submissions right now. Please contact the site owner another way."
            }
            Refusal::OriginNotAllowed => "This site does not accept requests from this origin",
            Refusal::RateLimited(_) => {
                "Too many submissions from your network. Please wait a minute and try again."
            }
            Refusal::PayloadTooLarge => "The submission is too large.",
            Refusal::UnsupportedContentType => "This kind of submission is not supported.",
            Refusal::FileUploadNotSupported => {
                "File uploads are not supported by this form. Please remove the file and send again."
            }
            Refusal::MalformedBody => "The submission could not be read.",
            Refusal::TooManyFields => "The submission has too many fields.",
            Refusal::FieldNameTooLong => "The submission has a field name that is too long.",
            Refusal::MissingToken => {
                "The verification did not run. Please enable JavaScript, complete the verification and send again."
            }
            Refusal::InvalidToken => {
                "The verification could not be checked. Please reload the page and try again."
            }
            Refusal::TimeoutOrDuplicate => {
                "The verification expired or was already used. Please reload the page and try again."
            }
            Refusal::SiteMismatch => {
                "The verification belongs to another form. Please reload the page and try again."
            }
            Refusal::VerifierUnavailable => {
                "The spam check could not be completed right now, so nothing was sent. Please try again in a few minutes."
            }
            Refusal::DeliveryFailed => {
                "Your message could not be delivered right now and was not kept. Please try again later or contact the site owner another way."
            }
            Refusal::BadRequest => "Invalid body",
            Refusal::ChallengeInvalid => "Challenge invalid or expired",
            Refusal::InvalidSolution => "Invalid solution",
            Refusal::InvalidSession => "The verification session does not match its challenge",
            Refusal::RequestTimeout => {
                "The submission took too long to arrive. Please check your connection and send again."
            }
            Refusal::MissingInputSecret => "The secret is missing",
            Refusal::InvalidInputSecret => "The secret is not one of a site",
            Refusal::MissingInputResponse => "The token is missing",
            Refusal::InvalidInputResponse => "The token is not one this server issued",
            Refusal::Internal => "Internal error, please try again",
        }
    }
}

impl From<&BodyError> for Refusal {
    fn from(e: &BodyError) -> Refusal {
        match e {
            BodyError::UnsupportedContentType => Refusal::UnsupportedContentType,
            BodyError::FileUpload => Refusal::FileUploadNotSupported,
            BodyError::Malformed => Refusal::MalformedBody,
            BodyError::TooManyFields => Refusal::TooManyFields,
            BodyError::NameTooLong => Refusal::FieldNameTooLong,
        }
    }
}
