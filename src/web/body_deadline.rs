//! The whole request body must arrive within `CAPUTCHIN_BODY_TIMEOUT_MS` of its headers (actix
//! bounds only the headers). A body that stalls or trickles past the deadline ends in an error for
//! whatever reads it, and the answer becomes 408 with the connection closed, so a slow client
//! cannot hold a connection open. A body nobody read closes the connection after the answer too.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::{ConnectionType, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage as _, ResponseError as _};
use futures_util::Stream;

use crate::web::error::{Refusal, Refused, Shape};

/// What the wrapped body saw (the middleware and the body live on one worker thread).
#[derive(Default)]
struct Seen {
    /// The deadline passed before the body ended.
    expired: Cell<bool>,
    /// The body ended within the deadline.
    finished: Cell<bool>,
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seen: Rc<Seen>,
}

/// The error a body read gets when the deadline passed: handlers answer it as
/// [`Refusal::RequestTimeout`] in their own shape ([`is_timeout`]).
fn timeout_error() -> PayloadError {
    PayloadError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the request body did not arrive in time",
    ))
}

/// True when a body read failed because the body deadline passed.
pub fn is_timeout(error: &Error) -> bool {
    matches!(
        error.as_error::<PayloadError>(),
        Some(PayloadError::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut
    )
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.seen.finished.get() {
            return Poll::Ready(None);
        }
        if self.seen.expired.get() {
            return Poll::Ready(Some(Err(timeout_error())));
        }
        // The deadline first, so that a body trickling in byte by byte cannot outrun it.
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.seen.expired.set(true);
            return Poll::Ready(Some(Err(timeout_error())));
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(next, Poll::Ready(None)) {
            self.seen.finished.set(true);
        }
        next
    }
}

/// True when the request announces a body (a length above zero, or chunks).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .is_some_and(|length| length > 0)
}

/// The middleware: `from_fn(move |req, next| body_deadline::enforce(timeout, req, next))`.
///
/// The endpoints answer a timed-out body as [`Refusal::RequestTimeout`] in their own shape;
/// an answer made without knowing (an extractor's 400) becomes the form endpoint's 408 page. Either
/// way the connection is closed, as it is after any answer whose body was not read to the end.
pub async fn enforce(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    if !has_body(&req) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let seen = Rc::new(Seen::default());
    let body = DeadlineBody {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        seen: Rc::clone(&seen),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let json = crate::web::form::wants_json(req.request());
    let timeout_page = || {
        let mut answer = Refused::new(
            Refusal::RequestTimeout,
            Shape::Form { json },
            crate::web::cors::Cors::NoOrigin,
        )
        .error_response();
        answer.head_mut().set_connection_type(ConnectionType::Close);
        answer
    };
    let mut res = match next.call(req).await {
        Ok(res) if !seen.expired.get() || res.status() == StatusCode::REQUEST_TIMEOUT => {
            res.map_into_boxed_body()
        }
        Ok(res) => {
            let (request, _) = res.into_parts();
            ServiceResponse::new(request, timeout_page())
        }
        Err(e) if seen.expired.get() => {
            return Err(actix_web::error::InternalError::from_response(e, timeout_page()).into());
        }
        Err(e) => return Err(e),
    };
    if !seen.finished.get() {
        // The rest of the body may never come: do not wait for it to find a next request.
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}
