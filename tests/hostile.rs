//! Hostile receivers (in their own test process, so the memory bound is measured without other
//! tests running beside it): each ends in its category within the timeout plus a margin.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

#[path = "api/helpers.rs"]
mod helpers;
#[path = "api/receiver.rs"]
mod receiver;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::{Duration, Instant};

use caputchin_forwarder::delivery::{Destination, Outcome};

use helpers::{site_input, spawn_app_with};

/// A loopback server that misbehaves in one way; returns its port.
fn hostile(kind: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                if kind == "slam" {
                    return drop(stream);
                }
                let mut buf = [0u8; 65536];
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = stream.read(&mut buf);
                match kind {
                    "silent" => std::thread::sleep(Duration::from_secs(20)),
                    "trickle" => {
                        let _ =
                            stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000\r\n\r\n");
                        for _ in 0..400 {
                            if stream.write_all(b"x").is_err() {
                                break;
                            }
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                    "huge" => {
                        let _ = stream
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 104857600\r\n\r\n");
                        let chunk = vec![b'a'; 1 << 16];
                        for _ in 0..1600 {
                            if stream.write_all(&chunk).is_err() {
                                break;
                            }
                        }
                    }
                    _ => {}
                }
            });
        }
    });
    port
}

/// An https receiver with a self-signed certificate (openssl s_server).
fn self_signed_tls(dir: &std::path::Path) -> (std::process::Child, u16) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success());
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = std::process::Command::new("openssl")
        .args(["s_server", "-quiet", "-www", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(&cert)
        .arg("-key")
        .arg(&key)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, port)
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[actix_web::test]
async fn hostile_receivers_end_in_their_category_within_the_timeout_and_bounded_memory() {
    let timeout = Duration::from_millis(800);
    let app = spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.delivery_timeout = Duration::from_millis(800);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (mut tls, tls_port) = self_signed_tls(dir.path());
    let cases = [
        (
            format!("http://127.0.0.1:{}/", hostile("trickle")),
            Outcome::Timeout,
        ),
        (
            format!("http://127.0.0.1:{}/", hostile("silent")),
            Outcome::Timeout,
        ),
        (
            format!("http://127.0.0.1:{}/", hostile("slam")),
            Outcome::Connect,
        ),
        (format!("https://localhost:{tls_port}/"), Outcome::Tls),
        (
            format!("http://127.0.0.1:{}/", hostile("huge")),
            Outcome::Delivered,
        ),
    ];
    app.resolver.answer("localhost", &[&["127.0.0.1"]]);
    let client = app.state.deliverer.client();
    let before = rss_kib();

    for (url, expected) in cases {
        let mut input = site_input("Hostile");
        input.webhook_url = url.clone();
        let key = app.create_site(&input).site_key;
        let site = app.state.sites.get(key.as_str()).unwrap();
        let started = Instant::now();
        let deliveries = caputchin_forwarder::test_delivery::run(&app.state, &client, &site).await;
        let elapsed = started.elapsed();
        let report = deliveries.get(Destination::Webhook).unwrap();
        assert_eq!(report.outcome, expected, "{url}: {}", report.detail);
        assert!(
            elapsed < timeout + Duration::from_millis(700),
            "{url} took {elapsed:?}"
        );
        assert!(
            report
                .response_body
                .as_ref()
                .is_none_or(|b| b.len() <= 2048)
        );
    }
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    assert!(grown_mib < 32, "memory grew by {grown_mib} MiB");
    let _ = tls.kill();
}
