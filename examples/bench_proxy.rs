//! The benchmark's reference for `bench/run`: the least a form forwarder can do. It forwards each
//! POST body to the receiver with one pooled, keep-alive awc client per worker and answers 303 —
//! no verification, no parsing, no database.
//!
//! `cargo run --release --example bench_proxy -- 127.0.0.1:PORT http://127.0.0.1:RECEIVER/in`

use std::time::Duration;

use actix_web::http::header;
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::{Context as _, bail};

/// Where bodies go.
struct Upstream(String);

async fn forward(
    upstream: web::Data<Upstream>,
    client: web::Data<awc::Client>,
    body: web::Bytes,
) -> HttpResponse {
    let sent = client
        .post(upstream.0.as_str())
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .send_body(body)
        .await;
    match sent {
        Ok(mut response) if response.status().is_success() => {
            // Read the answer so the connection goes back to the pool.
            match response.body().limit(2048).await {
                Ok(_) => HttpResponse::SeeOther()
                    .insert_header((header::LOCATION, "/thanks"))
                    .finish(),
                Err(_) => HttpResponse::BadGateway().finish(),
            }
        }
        _ => HttpResponse::BadGateway().finish(),
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(bind), Some(upstream)) = (args.next(), args.next()) else {
        bail!("usage: bench_proxy BIND RECEIVER_URL");
    };
    actix_web::rt::System::new().block_on(async move {
        let listener =
            std::net::TcpListener::bind(&bind).with_context(|| format!("binding {bind}"))?;
        eprintln!("bench_proxy listening on {}", listener.local_addr()?);
        let upstream = web::Data::new(Upstream(upstream));
        HttpServer::new(move || {
            // One client, hence one connection pool, per worker: awc clients are not Send.
            let client = awc::Client::builder()
                .connector(awc::Connector::new().conn_keep_alive(Duration::from_secs(15)))
                .disable_redirects()
                .timeout(Duration::from_secs(5))
                .finish();
            App::new()
                .app_data(upstream.clone())
                .app_data(web::Data::new(client))
                .app_data(web::PayloadConfig::new(64 * 1024))
                .route("/{tail:.*}", web::post().to(forward))
        })
        .listen(listener)?
        .run()
        .await
        .context("proxy failed")
    })
}
