//! How a public refusal is answered (SPEC §2, §3, §13): its HTTP status, and one
//! [`ResponseError`] that shapes it for the endpoint that refused — the form endpoint's HTML page
//! or JSON (content negotiation), Cap's JSON, the JSON of Caputchin's widget (bootstrap, start,
//! pass), or siteverify's always-200 JSON — with the endpoint's CORS answer.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use serde_json::json;

pub use crate::refusal::Refusal;
use crate::web::cors::{self, Cors};

/// The HTTP status of a refusal on the form and Cap endpoints.
pub fn status(refusal: Refusal) -> StatusCode {
    match refusal {
        Refusal::UnknownSite => StatusCode::NOT_FOUND,
        Refusal::ForwardingDisabled
        | Refusal::SiteDisabled
        | Refusal::OriginNotAllowed
        | Refusal::InvalidToken
        | Refusal::TimeoutOrDuplicate
        | Refusal::SiteMismatch
        | Refusal::ChallengeInvalid
        | Refusal::InvalidSolution
        | Refusal::InvalidSession => StatusCode::FORBIDDEN,
        Refusal::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::UnsupportedContentType | Refusal::FileUploadNotSupported => {
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        }
        Refusal::MalformedBody | Refusal::MissingToken | Refusal::BadRequest => {
            StatusCode::BAD_REQUEST
        }
        Refusal::TooManyFields | Refusal::FieldNameTooLong => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::DeliveryFailed => StatusCode::BAD_GATEWAY,
        Refusal::VerifierUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        Refusal::MissingInputSecret
        | Refusal::InvalidInputSecret
        | Refusal::MissingInputResponse
        | Refusal::InvalidInputResponse => StatusCode::BAD_REQUEST,
        Refusal::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The wire shape of the endpoint that refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The form endpoint: `{"ok": false, "error", "message"}` when the visitor wants JSON, else
    /// the HTML error page (SPEC §3).
    Form {
        /// Whether the visitor wants JSON ([`crate::web::form::wants_json`]).
        json: bool,
    },
    /// Cap's endpoints: `error` carries the message the widget shows, `code` the code
    /// (CAP-PROTOCOL §3).
    Cap,
    /// Siteverify: always 200 (SPEC §2) with `error-codes`, but over the rate limit (429) and for
    /// a body that did not arrive in time (408), in the same shape.
    Siteverify,
    /// `GET /v1/widget/bootstrap` of Caputchin's widget: an unknown or disabled site is a 409
    /// `{"error": "gate-misconfigured", "message", "code"}`, the one bootstrap refusal the widget
    /// reports as an `error` event (CAPUTCHIN-WIDGET-PROTOCOL §4); others keep their status.
    Bootstrap,
    /// `POST /v1/verify/start`: `{"error": code, "message"}`; the widget reads `error` whatever
    /// the status (CAPUTCHIN-WIDGET-PROTOCOL §5).
    VerifyStart,
    /// `POST /v1/verify/pass`: `{"success": false, "error": code, "message"}`
    /// (CAPUTCHIN-WIDGET-PROTOCOL §6).
    VerifyPass,
}

/// The bootstrap code that makes Caputchin's widget fire `error` `gate-unavailable`.
const GATE_MISCONFIGURED: &str = "gate-misconfigured";

/// Whether a bootstrap refusal is answered as a misconfigured gate (409).
fn is_gate_refusal(refusal: Refusal) -> bool {
    matches!(
        refusal,
        Refusal::UnknownSite | Refusal::ForwardingDisabled | Refusal::SiteDisabled
    )
}

/// A refusal ready to answer: what was refused, the sentence for people, the shape of the
/// endpoint that refused and its CORS answer. Handlers return it as their error.
#[derive(Debug)]
pub struct Refused {
    refusal: Refusal,
    message: Cow<'static, str>,
    shape: Shape,
    cors: Cors,
}

impl Refused {
    /// `refusal` in `shape`, with the code's own message.
    pub fn new(refusal: Refusal, shape: Shape, cors: Cors) -> Refused {
        Refused {
            message: Cow::Borrowed(refusal.message()),
            refusal,
            shape,
            cors,
        }
    }

    /// The same refusal with a message that says more than the code's own.
    pub fn saying(mut self, message: impl Into<Cow<'static, str>>) -> Refused {
        self.message = message.into();
        self
    }

    /// What was refused.
    pub fn refusal(&self) -> Refusal {
        self.refusal
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.refusal.code())
    }
}

#[derive(Template)]
#[template(path = "public/error.html")]
struct ErrorPage<'a> {
    status: u16,
    code: &'static str,
    message: &'a str,
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        match (self.shape, self.refusal) {
            (Shape::Siteverify, Refusal::RateLimited(_)) => StatusCode::TOO_MANY_REQUESTS,
            (Shape::Siteverify, Refusal::RequestTimeout) => StatusCode::REQUEST_TIMEOUT,
            (Shape::Siteverify, _) => StatusCode::OK,
            (Shape::Bootstrap, refusal) if is_gate_refusal(refusal) => StatusCode::CONFLICT,
            _ => status(self.refusal),
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut builder = HttpResponse::build(self.status_code());
        // Siteverify is called by site backends, not browsers: its answers carry no CORS headers.
        if self.shape != Shape::Siteverify {
            cors::apply(&mut builder, &self.cors);
        }
        if let Refusal::RateLimited(seconds) = self.refusal {
            builder.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        let code = self.refusal.code();
        match self.shape {
            Shape::Cap => {
                builder.json(json!({"success": false, "error": self.message, "code": code}))
            }
            Shape::Bootstrap if is_gate_refusal(self.refusal) => builder
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({"error": GATE_MISCONFIGURED, "message": self.message, "code": code})),
            Shape::Bootstrap | Shape::VerifyStart => builder
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({"error": code, "message": self.message})),
            Shape::VerifyPass => builder
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({"success": false, "error": code, "message": self.message})),
            Shape::Siteverify => builder
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({
                    "success": false,
                    "error-codes": [code],
                    "platform": {"game_id": null, "score": null, "duration_ms": null},
                })),
            Shape::Form { json: true } => builder
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .json(json!({"ok": false, "error": code, "message": self.message})),
            Shape::Form { json: false } => {
                builder.insert_header((header::CACHE_CONTROL, "no-store"));
                let page = ErrorPage {
                    status: self.status_code().as_u16(),
                    code,
                    message: &self.message,
                };
                match page.render() {
                    Ok(html) => builder.content_type("text/html; charset=utf-8").body(html),
                    Err(_) => builder
                        .content_type("text/plain; charset=utf-8")
                        .body(self.message.to_string()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::status as status_of;
    use super::*;
    use crate::fields::BodyError;

    #[test]
    fn every_body_error_has_its_spec_code_and_status() {
        let table = [
            (
                BodyError::UnsupportedContentType,
                "unsupported-content-type",
                415,
            ),
            (BodyError::FileUpload, "file-upload-not-supported", 415),
            (BodyError::Malformed, "malformed-body", 400),
            (BodyError::TooManyFields, "too-many-fields", 422),
            (BodyError::NameTooLong, "field-name-too-long", 422),
        ];
        for (error, code, status) in table {
            assert_eq!(Refusal::from(&error).code(), code);
            assert_eq!(status_of(Refusal::from(&error)).as_u16(), status);
        }
    }
}
