//! The whole request body must arrive within `CAPUTCHIN_BODY_TIMEOUT_MS` of its headers (actix
//! bounds only the headers). A body that stalls or trickles past the deadline ends in an error for
//! whatever reads it, and the answer becomes 408 with the connection closed, so a slow client
//! cannot hold a connection open. A body nobody read closes the connection after the answer too.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage as _, HttpResponse};
use futures_util::Stream;

/// What the wrapped body saw.
#[derive(Default)]
struct Seen {
    /// The deadline passed before the body ended.
    expired: AtomicBool,
    /// The body ended (or failed) within the deadline.
    finished: AtomicBool,
}

/// A request body that fails once its deadline passes.
struct DeadlineBody {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    seen: Arc<Seen>,
}

impl Stream for DeadlineBody {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.seen.finished.load(Ordering::Relaxed) || self.seen.expired.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        // The deadline first, so that a body trickling in byte by byte cannot outrun it.
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.seen.expired.store(true, Ordering::Relaxed);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        let next = Pin::new(&mut self.inner).poll_next(cx);
        if matches!(next, Poll::Ready(None | Some(Err(_)))) {
            self.seen.finished.store(true, Ordering::Relaxed);
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
    let seen = Arc::new(Seen::default());
    let body = DeadlineBody {
        inner: req.take_payload(),
        deadline: Box::pin(tokio::time::sleep(timeout)),
        seen: Arc::clone(&seen),
    };
    req.set_payload(Payload::Stream {
        payload: Box::pin(body),
    });
    let mut res = next.call(req).await?.map_into_boxed_body();
    if seen.expired.load(Ordering::Relaxed) {
        let (req, _) = res.into_parts();
        let answer = HttpResponse::RequestTimeout()
            .force_close()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({
                "error": "request-timeout",
                "message": "The request body did not arrive in time.",
            }));
        return Ok(ServiceResponse::new(req, answer));
    }
    if !seen.finished.load(Ordering::Relaxed) {
        // The rest of the body may never come: do not wait for it to find a next request.
        res.response_mut()
            .head_mut()
            .set_connection_type(ConnectionType::Close);
    }
    Ok(res)
}
