//! The benchmark's webhook receiver, the physical limit of `bench/run`: answers every POST with
//! 200 `{}` after reading its body, counts them, and tells the count at `GET /count`.
//!
//! `cargo run --release --example bench_receiver -- 127.0.0.1:PORT`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context as _;

/// Requests received since start.
#[derive(Default)]
struct Counter(AtomicU64);

async fn receive(counter: web::Data<Arc<Counter>>, _body: web::Bytes) -> HttpResponse {
    counter.0.fetch_add(1, Ordering::Relaxed);
    HttpResponse::Ok()
        .content_type("application/json")
        .body("{}")
}

async fn count(counter: web::Data<Arc<Counter>>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain")
        .body(counter.0.load(Ordering::Relaxed).to_string())
}

fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let counter = Arc::new(Counter::default());
    actix_web::rt::System::new().block_on(async move {
        let listener =
            std::net::TcpListener::bind(&bind).with_context(|| format!("binding {bind}"))?;
        eprintln!("bench_receiver listening on {}", listener.local_addr()?);
        HttpServer::new(move || {
            App::new()
                .app_data(web::Data::new(Arc::clone(&counter)))
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/count", web::get().to(count))
                .route("/{tail:.*}", web::post().to(receive))
        })
        .listen(listener)?
        .run()
        .await
        .context("receiver failed")
    })
}
