//! Behind a reverse proxy (SPEC §9): the client address decided from trusted proxies' headers
//! keys the rate limit, for clients on several loopback addresses (Linux routes all of
//! 127.0.0.0/8 to loopback), directly and through a real nginx configured from `deploy/`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{TestApp, answer, spawn_app_with};

/// A client whose connections come from `source` (a loopback address).
fn client_from(source: &str) -> awc::Client {
    let source: IpAddr = source.parse().unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().local_address(source))
        .timeout(Duration::from_secs(30))
        .disable_redirects()
        .finish()
}

/// Posts a form without a token to `base`/f/`key` from `source` with extra headers: 400
/// (`missing-token`) while the client's bucket has room, 429 once it is spent.
async fn post_from(base: &str, key: &str, source: &str, headers: &[(&str, &str)]) -> u16 {
    let mut req = client_from(source)
        .post(format!("{base}/f/{key}"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Accept", "application/json"));
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    let got = answer(req.send_body("message=hi").await.unwrap()).await;
    match got.status {
        400 => assert_eq!(got.json["error"], "missing-token", "{}", got.text),
        429 => assert_eq!(got.json["error"], "rate-limited", "{}", got.text),
        other => panic!("unexpected {other}: {}", got.text),
    }
    got.status
}

/// An app trusting only 127.0.0.1 as a proxy, allowing two posts per client per minute.
async fn app_behind_proxy() -> (TestApp, String) {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.rate_limit_per_min = 2;
    })
    .await;
    let key = app
        .create_receiving_site("Proxied")
        .site_key
        .as_str()
        .to_owned();
    (app, key)
}

#[actix_web::test]
async fn untrusted_peers_are_their_own_bucket_whatever_headers_they_send() {
    let (app, key) = app_behind_proxy().await;
    let base = &app.address;
    let xff = |v| [("X-Forwarded-For", v)];
    assert_eq!(
        post_from(base, &key, "127.0.0.2", &xff("203.0.113.1")).await,
        400
    );
    assert_eq!(
        post_from(base, &key, "127.0.0.2", &xff("203.0.113.2")).await,
        400
    );
    // Another forged address from the same untrusted peer changes nothing.
    assert_eq!(
        post_from(
            base,
            &key,
            "127.0.0.2",
            &[("Forwarded", "for=198.51.100.9")]
        )
        .await,
        429
    );
    assert_eq!(
        post_from(base, &key, "127.0.0.2", &xff("198.51.100.10")).await,
        429
    );
    // A different source address is a different client.
    assert_eq!(
        post_from(base, &key, "127.0.0.3", &xff("203.0.113.1")).await,
        400
    );
}

#[actix_web::test]
async fn a_trusted_proxy_names_the_client_and_spoofed_left_most_entries_change_nothing() {
    let (app, key) = app_behind_proxy().await;
    let base = &app.address;
    let via = |headers: &'static [(&'static str, &'static str)]| headers;
    let visitor = via(&[("X-Forwarded-For", "198.51.100.1")]);
    assert_eq!(post_from(base, &key, "127.0.0.1", visitor).await, 400);
    assert_eq!(post_from(base, &key, "127.0.0.1", visitor).await, 400);
    assert_eq!(post_from(base, &key, "127.0.0.1", visitor).await, 429);
    // The visitor prepends addresses of its own: the rightmost untrusted entry still decides.
    let spoofed = via(&[("X-Forwarded-For", "6.6.6.6, 7.7.7.7, 198.51.100.1")]);
    assert_eq!(post_from(base, &key, "127.0.0.1", spoofed).await, 429);
    // The same visitor named by RFC 7239 Forwarded, IPv4 with a port.
    let forwarded = via(&[("Forwarded", "for=\"198.51.100.1:4711\";proto=https")]);
    assert_eq!(post_from(base, &key, "127.0.0.1", forwarded).await, 429);
    // Another visitor behind the same proxy has a bucket of its own.
    let other = via(&[("X-Forwarded-For", "198.51.100.2")]);
    assert_eq!(post_from(base, &key, "127.0.0.1", other).await, 400);
    let v6 = via(&[("Forwarded", "for=\"[2001:db8::1]:443\"")]);
    assert_eq!(post_from(base, &key, "127.0.0.1", v6).await, 400);
    assert_eq!(post_from(base, &key, "127.0.0.1", v6).await, 400);
    assert_eq!(post_from(base, &key, "127.0.0.1", v6).await, 429);
    // Garbage or an obfuscated entry is never an error: the proxy's own address is used.
    for bad in [
        via(&[("Forwarded", "for=_hidden")]),
        via(&[("Forwarded", "for=\"unterminated")]),
        via(&[("X-Forwarded-For", "not-an-address")]),
    ] {
        let status = post_from(base, &key, "127.0.0.1", bad).await;
        assert!(status == 400 || status == 429);
    }
    assert_eq!(
        post_from(base, &key, "127.0.0.1", &[]).await,
        429,
        "the proxy's bucket"
    );
    // A huge header of trusted hops still names the visitor.
    let chain = format!("198.51.100.3{}", ", 127.0.0.1".repeat(500));
    let huge = [("X-Forwarded-For", chain.as_str())];
    assert_eq!(post_from(base, &key, "127.0.0.1", &huge).await, 400);
}

/// A real nginx from Debian (`/usr/sbin/nginx`), configured from `deploy/nginx.conf` with its TLS
/// parts taken out, listening on a loopback port and proxying to `upstream_port`.
struct Nginx {
    port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

const NGINX: &str = "/usr/sbin/nginx";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The site configuration of `deploy/nginx.conf` as a test runs it: the redirect server and the
/// TLS lines removed, listening on `port`, proxying to `upstream_port`.
fn test_site_config(deploy: &str, port: u16, upstream_port: u16) -> String {
    let mut out = String::new();
    let mut skipping = false;
    for line in deploy.lines() {
        let trimmed = line.trim();
        if trimmed == "# BEGIN redirect" || trimmed == "# BEGIN tls" {
            skipping = true;
            continue;
        }
        if trimmed == "# END redirect" || trimmed == "# END tls" {
            skipping = false;
            continue;
        }
        if skipping || trimmed.starts_with("ssl_") || trimmed == "listen [::]:443 ssl;" {
            continue;
        }
        if trimmed == "listen 443 ssl;" {
            out.push_str(&format!("    listen 127.0.0.1:{port};\n"));
            continue;
        }
        out.push_str(&line.replace("127.0.0.1:8080", &format!("127.0.0.1:{upstream_port}")));
        out.push('\n');
    }
    out
}

fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

impl Nginx {
    fn start(upstream_port: u16) -> Nginx {
        assert!(
            Path::new(NGINX).exists(),
            "{NGINX} is missing: install Debian's nginx (apt-get install nginx-light), as .ci/run does"
        );
        let deploy_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/nginx.conf");
        let deploy = std::fs::read_to_string(&deploy_path).unwrap();
        assert!(
            deploy.contains("127.0.0.1:8080"),
            "the upstream is where the unit binds"
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let site = test_site_config(&deploy, port, upstream_port);
        assert!(site.contains(&format!("listen 127.0.0.1:{port};")));
        assert!(!site.contains("ssl_") && !site.contains("return 301"));
        std::fs::write(dir.path().join("site.conf"), site).unwrap();
        let d = dir.path().display();
        let main = format!(
            "daemon off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  \
             include {d}/site.conf;\n}}\n"
        );
        std::fs::write(dir.path().join("nginx.conf"), main).unwrap();
        let mut cmd = if running_as_root() {
            // An unprivileged nginx, as an operator's would run: the folder is handed to nobody.
            let chown = Command::new("chown")
                .args(["-R", "nobody:nogroup"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(chown.success());
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", NGINX]);
            cmd
        } else {
            Command::new(NGINX)
        };
        let child = cmd
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx did not start: {}",
                std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            port,
            child,
            _dir: dir,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, not SIGKILL: the master then stops its worker too.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

#[actix_web::test]
async fn behind_the_real_nginx_each_visitor_has_its_own_bucket_even_with_forged_headers() {
    let (app, key) = app_behind_proxy().await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = Nginx::start(port);
    let base = nginx.url();

    assert_eq!(post_from(&base, &key, "127.0.0.2", &[]).await, 400);
    assert_eq!(post_from(&base, &key, "127.0.0.2", &[]).await, 400);
    assert_eq!(post_from(&base, &key, "127.0.0.2", &[]).await, 429);
    // A second visitor is not throttled by the first: the proxy's address is not the key.
    assert_eq!(post_from(&base, &key, "127.0.0.3", &[]).await, 400);
    assert_eq!(post_from(&base, &key, "127.0.0.3", &[]).await, 400);
    assert_eq!(post_from(&base, &key, "127.0.0.3", &[]).await, 429);
    // A visitor forging another's address (or a fresh one) still lands in its own bucket.
    let forged = [("X-Forwarded-For", "127.0.0.9")];
    assert_eq!(post_from(&base, &key, "127.0.0.4", &forged).await, 400);
    let forged = [
        ("Forwarded", "for=127.0.0.10"),
        ("X-Forwarded-For", "127.0.0.11"),
    ];
    assert_eq!(post_from(&base, &key, "127.0.0.4", &forged).await, 400);
    let forged = [("X-Forwarded-For", "127.0.0.12")];
    assert_eq!(post_from(&base, &key, "127.0.0.4", &forged).await, 429);
    // The forged names got nothing either: a visitor really at 127.0.0.9 still has room.
    assert_eq!(post_from(&base, &key, "127.0.0.9", &[]).await, 400);
}
