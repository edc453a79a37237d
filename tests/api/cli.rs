//! The binary: settings validation, the CLI commands, and `serve` with its logs (SPEC §7).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_caputchin-forwarder");

/// The binary with a clean environment, run inside `dir` (so no `.env` is picked up).
pub(crate) fn cli(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir)
        .env("CAPUTCHIN_DATABASE", dir.join("db/forwarder.db"))
        .env("RUST_LOG", "warn");
    cmd
}

pub(crate) fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_settings_exit_non_zero_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("CAPUTCHIN_DELIVERY_TIMEOUT_MS", "0"),
        ("CAPUTCHIN_DELIVERY_TIMEOUT_MS", "10001"),
        ("CAPUTCHIN_DELIVERY_TIMEOUT_MS", "soon"),
        ("CAPUTCHIN_EGRESS_ALLOW", "10.0.0.0/8,not-a-cidr"),
        ("CAPUTCHIN_SERVER_KEY", "c2hvcnQ="),
        ("CAPUTCHIN_BIND", "localhost"),
        ("CAPUTCHIN_SIGNUP", "sometimes"),
        ("CAPUTCHIN_MAX_FIELDS", "0"),
        ("CAPUTCHIN_LOG_FORMAT", "xml"),
        ("CAPUTCHIN_METRICS_BIND", "nonsense"),
        ("CAPUTCHIN_TRUSTED_PROXIES", "10.0.0.0/33"),
    ];
    for (variable, value) in cases {
        let out = run(cli(dir.path()).env(variable, value).arg("migrate"));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{variable}={value}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(variable),
            "{variable}={value}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("c2hvcnQ="), "a key value was echoed");
    }
    let flag = run(cli(dir.path()).args(["--delivery-timeout-ms", "0", "migrate"]));
    assert!(!flag.status.success());
    assert!(stderr(&flag).contains("CAPUTCHIN_DELIVERY_TIMEOUT_MS"));
}

#[test]
fn help_documents_every_command_and_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cli(dir.path()).arg("--help"));
    let help = stdout(&out);
    for needle in [
        "serve",
        "account",
        "site",
        "migrate",
        "CAPUTCHIN_BIND",
        "CAPUTCHIN_DATABASE",
        "CAPUTCHIN_PUBLIC_URL",
        "CAPUTCHIN_DELIVERY_TIMEOUT_MS",
        "CAPUTCHIN_EGRESS_ALLOW",
        "CAPUTCHIN_SERVER_KEY",
        "CAPUTCHIN_BOOTSTRAP_EMAIL",
        "CAPUTCHIN_BOOTSTRAP_PASSWORD",
        "CAPUTCHIN_SIGNUP",
        "CAPUTCHIN_RATE_LIMIT_PER_MIN",
        "CAPUTCHIN_CHALLENGE_RATE_LIMIT_PER_MIN",
        "CAPUTCHIN_REDEEM_RATE_LIMIT_PER_MIN",
        "CAPUTCHIN_SITEVERIFY_RATE_LIMIT_PER_MIN",
        "CAPUTCHIN_API_RATE_LIMIT_PER_MIN",
        "CAPUTCHIN_BODY_TIMEOUT_MS",
        "CAPUTCHIN_MAX_BODY_BYTES",
        "CAPUTCHIN_MAX_FIELDS",
        "CAPUTCHIN_TRUSTED_PROXIES",
        "CAPUTCHIN_METRICS_BIND",
        "CAPUTCHIN_LOG_FORMAT",
        "RUST_LOG",
        "backup",
    ] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let site_help = stdout(&run(cli(dir.path()).args(["site", "create", "--help"])));
    for needle in [
        "--account",
        "--webhook",
        "--origin",
        "--difficulty",
        "--json",
    ] {
        assert!(
            site_help.contains(needle),
            "site create --help lacks {needle}"
        );
    }
}

#[test]
fn migrate_creates_the_database_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cli(dir.path()).arg("migrate"));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("db/forwarder.db").exists());
    assert!(run(cli(dir.path()).arg("migrate")).status.success());
}

pub(crate) fn create_account(dir: &Path, email: &str) -> Output {
    let mut child = cli(dir)
        .args(["account", "create", "--email", email, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn accounts_and_sites_are_created_listed_and_refused_with_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(create_account(d, "owner@example.com").status.success());

    let duplicate = create_account(d, "OWNER@example.com");
    assert!(!duplicate.status.success());
    assert!(
        stderr(&duplicate).contains("already exists"),
        "{}",
        stderr(&duplicate)
    );

    let unknown = run(cli(d).args([
        "site",
        "create",
        "--account",
        "nobody@example.com",
        "--name",
        "x",
        "--webhook",
        "https://hooks.example.com/x",
    ]));
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no account"),
        "{}",
        stderr(&unknown)
    );

    for (webhook, expected) in [
        ("ftp://hooks.example.com/x", "http or https"),
        (
            "https://user:pw@hooks.example.com/x",
            "user name or password",
        ),
        ("nonsense", "not a valid absolute URL"),
    ] {
        let bad = run(cli(d).args([
            "site",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "x",
            "--webhook",
            webhook,
        ]));
        assert!(!bad.status.success(), "{webhook}");
        assert!(
            stderr(&bad).contains(expected),
            "{webhook}: {}",
            stderr(&bad)
        );
    }

    let created = run(cli(d)
        .env("CAPUTCHIN_PUBLIC_URL", "https://forms.example.com/")
        .args([
            "site",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "Contact",
            "--webhook",
            "https://hooks.example.com/secret-path/abc",
            "--origin",
            "https://www.example.com",
            "--json",
        ]));
    assert!(created.status.success(), "{}", stderr(&created));
    let json: Value = serde_json::from_str(stdout(&created).trim()).unwrap();
    let object = json.as_object().unwrap();
    let mut keys: Vec<_> = object.keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "cap_endpoint",
            "forwarder_url",
            "secret",
            "site_id",
            "site_key"
        ]
    );
    let key = json["site_key"].as_str().unwrap();
    assert!(key.starts_with("cpt_pub_"));
    assert!(json["secret"].as_str().unwrap().starts_with("cpt_sec_"));
    assert!(json["site_id"].as_str().unwrap().starts_with("site_"));
    assert_eq!(
        json["forwarder_url"],
        format!("https://forms.example.com/f/{key}")
    );
    assert_eq!(
        json["cap_endpoint"],
        format!("https://forms.example.com/v1/cap/{key}/")
    );

    let listed = run(cli(d).args(["site", "list"]));
    assert!(listed.status.success());
    assert!(stdout(&listed).contains(key));
    assert!(stdout(&listed).contains("https://hooks.example.com/…"));
    assert!(
        !stdout(&listed).contains("secret-path"),
        "webhook URL not masked"
    );

    let listed_json =
        run(cli(d).args(["site", "list", "--account", "owner@example.com", "--json"]));
    let listed_json: Value = serde_json::from_str(stdout(&listed_json).trim()).unwrap();
    assert_eq!(listed_json["sites"][0]["site_key"], key);
    assert_eq!(
        listed_json["sites"][0]["webhook_url"],
        "https://hooks.example.com/…"
    );
    assert!(
        !listed_json
            .to_string()
            .contains(json["secret"].as_str().unwrap())
    );
}

/// The port in the `listening` log line, text (`port=…`) or JSON (`"port":…`).
fn logged_port(line: &str) -> Option<u16> {
    if line.starts_with('{') {
        let event: Value = serde_json::from_str(line).ok()?;
        return event["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    }
    let rest = line.split("port=").nth(1)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Starts `serve` on an ephemeral port and returns the child, the port it logged, and every
/// line of its standard error (those before the port included).
pub(crate) fn serve(
    dir: &Path,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    serve_with(cli(dir), extra_env)
}

/// The binary as [`cli`] makes it, started under `umask` by a shell.
fn cli_with_umask(dir: &Path, umask: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.env_clear()
        .current_dir(dir)
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\""), BIN])
        .env("CAPUTCHIN_DATABASE", dir.join("db/forwarder.db"))
        .env("RUST_LOG", "warn");
    cmd
}

/// `serve` from this command on an ephemeral port; its port and its standard error, by line.
fn serve_with(
    mut cmd: Command,
    extra_env: &[(&str, &str)],
) -> (std::process::Child, u16, std::sync::mpsc::Receiver<String>) {
    cmd.env("CAPUTCHIN_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut port_tx = Some(port_tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = logged_port(&line)
                && let Some(port_tx) = port_tx.take()
            {
                let _ = port_tx.send(port);
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let port = port_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("serve did not log its port");
    (child, port, rx)
}

/// The log formats of SPEC §9; each log test runs in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    pub(crate) fn env(self) -> (&'static str, &'static str) {
        match self {
            LogFormat::Text => ("CAPUTCHIN_LOG_FORMAT", "text"),
            LogFormat::Json => ("CAPUTCHIN_LOG_FORMAT", "json"),
        }
    }

    /// In JSON, every non-empty line is one object with string `timestamp`, `level`, `target`
    /// and `message`; in text, no line is.
    pub(crate) fn assert_lines(self, logs: &str) {
        let lines: Vec<&str> = logs.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(!lines.is_empty(), "nothing was logged");
        for line in lines {
            let parsed = serde_json::from_str::<Value>(line);
            match self {
                LogFormat::Json => {
                    let event = parsed.unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
                    assert!(event.is_object(), "not an object: {line}");
                    for field in ["timestamp", "level", "target", "message"] {
                        assert!(event[field].is_string(), "no string {field}: {line}");
                    }
                }
                LogFormat::Text => assert!(parsed.is_err(), "a JSON line in text mode: {line}"),
            }
        }
    }

    /// Whether some event has this field with this string value.
    pub(crate) fn logged(self, logs: &str, field: &str, value: &str) -> bool {
        match self {
            // The text format writes the message bare and other fields as `name=value`.
            LogFormat::Text if field == "message" => logs.contains(value),
            LogFormat::Text => {
                logs.contains(&format!("{field}=\"{value}\""))
                    || logs.contains(&format!("{field}={value}"))
            }
            LogFormat::Json => logs
                .lines()
                .filter_map(|l| serde_json::from_str::<Value>(l).ok())
                .any(|event| event[field] == value),
        }
    }
}

/// Everything `serve` wrote to standard error until it was killed.
pub(crate) fn drain(
    child: &mut std::process::Child,
    logs: &std::sync::mpsc::Receiver<String>,
) -> String {
    child.kill().unwrap();
    child.wait().unwrap();
    let mut all = String::new();
    while let Ok(line) = logs.recv_timeout(Duration::from_millis(500)) {
        all.push_str(&line);
        all.push('\n');
    }
    all
}

#[actix_web::test]
async fn serve_answers_and_its_logs_hold_no_secret_token_or_webhook_url() {
    serve_answers_and_logs_no_secret(LogFormat::Text).await;
}

#[actix_web::test]
async fn serve_answers_and_its_json_logs_are_json_and_hold_no_secret_token_or_webhook_url() {
    serve_answers_and_logs_no_secret(LogFormat::Json).await;
}

async fn serve_answers_and_logs_no_secret(format: LogFormat) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(create_account(d, "owner@example.com").status.success());
    let created = run(cli(d).args([
        "site",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "Contact",
        "--webhook",
        "https://hooks.example.com/very-secret-hook",
        "--challenges",
        "2",
        "--difficulty",
        "1",
        "--json",
    ]));
    let site: Value = serde_json::from_str(stdout(&created).trim()).unwrap();
    let key = site["site_key"].as_str().unwrap().to_owned();
    let secret = site["secret"].as_str().unwrap().to_owned();
    let server_key = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU2Nzg5";
    let (mut child, port, logs) = serve(d, &[("CAPUTCHIN_SERVER_KEY", server_key), format.env()]);
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();

    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut res = client
        .post(format!("{base}/v1/cap/{key}/challenge"))
        .send()
        .await
        .unwrap();
    let issued: Value = res.json().await.unwrap();
    let challenge = issued["token"].as_str().unwrap().to_owned();
    let params = caputchin_forwarder::captcha::cap::ChallengeParams::new(2, 1).unwrap();
    let solutions = caputchin_forwarder::captcha::cap::solve(&challenge, params);
    let mut res = client
        .post(format!("{base}/v1/cap/{key}/redeem"))
        .send_json(&serde_json::json!({"token": challenge, "solutions": solutions}))
        .await
        .unwrap();
    let redeemed: Value = res.json().await.unwrap();
    let token = redeemed["token"].as_str().unwrap().to_owned();
    let mut res = client
        .post(format!("{base}/v1/siteverify"))
        .send_json(&serde_json::json!({"secret": secret, "response": token}))
        .await
        .unwrap();
    let verdict: Value = res.json().await.unwrap();
    assert_eq!(verdict["success"], true);

    // A personal access token, used once well and once with a typo, never reaches the logs.
    let minted = run(cli(d).args([
        "token",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "ci",
        "--json",
    ]));
    assert!(minted.status.success(), "{}", stderr(&minted));
    let minted: Value = serde_json::from_str(stdout(&minted).trim()).unwrap();
    let pat = minted["token"].as_str().unwrap().to_owned();
    let listed = client
        .get(format!("{base}/v1/management/tokens"))
        .insert_header(("Authorization", format!("Bearer {pat}")))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);
    // The last digit changed (to another one whatever it was).
    let last = if pat.ends_with('0') { '1' } else { '0' };
    let mistyped = format!("{}{last}", &pat[..pat.len() - 1]);
    let refused = client
        .get(format!("{base}/v1/management/tokens"))
        .insert_header(("Authorization", format!("Bearer {mistyped}")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    let all = drain(&mut child, &logs);
    format.assert_lines(&all);
    assert!(
        format.logged(&all, "route", "/v1/cap/{site_key}/redeem"),
        "requests are logged:\n{all}"
    );
    assert!(
        format.logged(&all, "route", "/v1/management/tokens"),
        "management requests are logged:\n{all}"
    );
    // The token's secret part: its first 16 characters are its listed prefix.
    let pat_secret = &pat[16..];
    let mistyped_secret = &mistyped[16..];
    for needle in [
        secret.as_str(),
        token.as_str(),
        challenge.as_str(),
        "very-secret-hook",
        server_key,
        pat_secret,
        mistyped_secret,
    ] {
        assert!(!all.contains(needle), "log contains {needle}:\n{all}");
    }
    let db = std::fs::read(d.join("db/forwarder.db")).unwrap();
    let wal = std::fs::read(d.join("db/forwarder.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(pat_secret),
            "the access token is stored in clear"
        );
    }
}

/// Solves a token against a running binary.
pub(crate) async fn token_from(base: &str, key: &str) -> String {
    let client = awc::Client::default();
    let mut res = client
        .post(format!("{base}/v1/cap/{key}/challenge"))
        .send()
        .await
        .unwrap();
    let issued: Value = res.json().await.unwrap();
    let challenge = issued["token"].as_str().unwrap().to_owned();
    let c = &issued["challenge"];
    let params = caputchin_forwarder::captcha::cap::ChallengeParams::new(
        c["c"].as_u64().unwrap() as u16,
        c["d"].as_u64().unwrap() as u8,
    )
    .unwrap();
    let solutions = caputchin_forwarder::captcha::cap::solve(&challenge, params);
    let mut res = client
        .post(format!("{base}/v1/cap/{key}/redeem"))
        .send_json(&serde_json::json!({"token": challenge, "solutions": solutions}))
        .await
        .unwrap();
    let redeemed: Value = res.json().await.unwrap();
    redeemed["token"].as_str().unwrap().to_owned()
}

fn receiving_site(dir: &Path, webhook: &str) -> (String, String) {
    assert!(create_account(dir, "owner@example.com").status.success());
    let created = run(cli(dir).args([
        "site",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "Contact",
        "--webhook",
        webhook,
        "--challenges",
        "2",
        "--difficulty",
        "1",
        "--json",
    ]));
    let site: Value = serde_json::from_str(stdout(&created).trim()).unwrap();
    (
        site["site_key"].as_str().unwrap().to_owned(),
        site["secret"].as_str().unwrap().to_owned(),
    )
}

#[actix_web::test]
async fn form_contents_and_webhook_urls_never_reach_the_logs() {
    form_contents_and_webhook_urls_stay_out_of_logs(LogFormat::Text).await;
}

#[actix_web::test]
async fn form_contents_and_webhook_urls_never_reach_the_json_logs() {
    form_contents_and_webhook_urls_stay_out_of_logs(LogFormat::Json).await;
}

async fn form_contents_and_webhook_urls_stay_out_of_logs(format: LogFormat) {
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::receiver::Receiver::start();
    let (key, _) = receiving_site(dir.path(), &receiver.url());
    let (mut child, port, logs) = serve(
        dir.path(),
        &[("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8"), format.env()],
    );
    let base = format!("http://127.0.0.1:{port}");
    let marker = "MARKER-5d1e-private-message";

    let token = token_from(&base, &key).await;
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .post(format!("{base}/f/{key}"))
        .insert_header(("User-Agent", "Visitor-Browser/1.0"))
        .send_form(&[("message", marker), ("caputchin-token", token.as_str())])
        .await
        .unwrap();

    assert_eq!(res.status(), 200);
    let received = receiver.requests();
    assert_eq!(received.len(), 1);
    assert!(String::from_utf8_lossy(&received[0].body).contains(marker));
    assert_eq!(
        received[0].header("user-agent"),
        Some("Caputchin-Forwarder/0.1")
    );
    assert!(
        received[0]
            .headers
            .iter()
            .all(|(_, v)| !v.contains("127.0.0.1:") || v.ends_with(&receiver.port.to_string()))
    );
    // A failed delivery and a refused submission, both carrying the marker.
    receiver.set(crate::receiver::Behavior {
        status: 500,
        ..Default::default()
    });
    let token2 = token_from(&base, &key).await;
    let failed = awc::Client::default()
        .post(format!("{base}/f/{key}"))
        .send_form(&[("message", marker), ("caputchin-token", token2.as_str())])
        .await
        .unwrap();
    assert_eq!(failed.status(), 502);
    let refused = awc::Client::default()
        .post(format!("{base}/f/{key}"))
        .send_form(&[
            ("message", marker),
            ("caputchin-token", "forged-token-value"),
        ])
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let mut all = drain(&mut child, &logs);
    assert!(
        format.logged(&all, "outcome", "delivered"),
        "deliveries are logged:\n{all}"
    );
    assert!(
        format.logged(&all, "outcome", "http-5xx"),
        "failed deliveries are logged:\n{all}"
    );
    receiver.set(crate::receiver::Behavior::default());
    let test = run(cli(dir.path())
        .env("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8")
        .env("RUST_LOG", "trace")
        .env(format.env().0, format.env().1)
        .args(["site", "test", &key]));
    assert!(test.status.success(), "{}", stderr(&test));
    all.push_str(&stderr(&test));
    format.assert_lines(&all);
    assert!(
        format.logged(&all, "message", "test delivery"),
        "the test delivery is logged:\n{}",
        stderr(&test)
    );
    for needle in [
        marker,
        "secret-path",
        token.as_str(),
        token2.as_str(),
        "forged-token-value",
        "Visitor-Browser",
    ] {
        assert!(!all.contains(needle), "log contains {needle}:\n{all}");
    }
}

#[actix_web::test]
async fn sigterm_lets_an_in_flight_delivery_finish_before_exit() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::receiver::Receiver::start();
    receiver.set(crate::receiver::Behavior {
        delay: Duration::from_millis(1500),
        ..Default::default()
    });
    let (key, _) = receiving_site(dir.path(), &receiver.url());
    let (mut child, port, _logs) = serve(dir.path(), &[("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8")]);
    let base = format!("http://127.0.0.1:{port}");
    let token = token_from(&base, &key).await;

    let posting = actix_web::rt::spawn({
        let base = base.clone();
        async move {
            awc::Client::builder()
                .disable_redirects()
                .timeout(Duration::from_secs(20))
                .finish()
                .post(format!("{base}/f/{key}"))
                .insert_header(("Accept", "application/json"))
                .send_form(&[("caputchin-token", token.as_str())])
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.requests().is_empty() && Instant::now() < deadline {
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    let term = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let signalled = Instant::now();
    actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    let refused = std::net::TcpStream::connect(("127.0.0.1", port)).is_err();

    let status = posting.await.unwrap().unwrap();
    let exit = child.wait().unwrap();
    let exited_after = signalled.elapsed();
    assert_eq!(status, 200, "the visitor got the receiver's truth");
    assert!(exit.success(), "graceful exit: {exit:?}");
    assert!(refused, "new connections are refused while draining");
    assert!(
        exited_after < Duration::from_secs(5 + 2),
        "exit took {exited_after:?}"
    );
    let conn = rusqlite::Connection::open(dir.path().join("db/forwarder.db")).unwrap();
    let recorded: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE outcome = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        recorded, 1,
        "the in-flight delivery was recorded before exit"
    );
}

#[test]
fn site_test_sends_a_test_delivery_and_prints_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::receiver::Receiver::start();
    let (key, _) = receiving_site(dir.path(), &receiver.url());

    let ok = run(cli(dir.path())
        .env("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8")
        .args(["site", "test", &key, "--json"]));
    let blocked = run(cli(dir.path()).args(["site", "test", &key, "--json"]));

    assert!(ok.status.success(), "{}", stderr(&ok));
    let report: Value = serde_json::from_str(stdout(&ok).trim()).unwrap();
    assert_eq!(
        report["deliveries"].as_array().unwrap().len(),
        1,
        "{report}"
    );
    let report = &report["deliveries"][0];
    assert_eq!(report["destination"], "webhook");
    assert_eq!(report["outcome"], "delivered");
    assert_eq!(report["http_status"], 200);
    assert_eq!(report["resolved"], serde_json::json!(["127.0.0.1"]));
    assert_eq!(report["response_body"], "{\"received\":true}");
    assert_eq!(receiver.requests()[0].header("x-caputchin-test"), Some("1"));
    assert!(!blocked.status.success());
    let report: Value = serde_json::from_str(stdout(&blocked).trim()).unwrap();
    let report = &report["deliveries"][0];
    assert_eq!(report["outcome"], "blocked-destination");
    assert!(
        report["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.0/8 (loopback)")
    );
    assert_eq!(receiver.connection_count(), 1);
}

#[test]
fn sites_take_a_remote_verifier_from_the_cli_and_site_edit_changes_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(create_account(d, "owner@example.com").status.success());
    let base = [
        "site",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "T",
        "--webhook",
        "https://hooks.example.com/x",
        "--verifier",
        "turnstile",
    ];

    let missing = run(cli(d).args(base));
    let created = run(cli(d).args(base).args([
        "--verifier-secret",
        "0x4AAA-cli-secret",
        "--verifier-url",
        "http://127.0.0.1:9/siteverify",
        "--json",
    ]));

    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("needs its secret"),
        "{}",
        stderr(&missing)
    );
    assert!(created.status.success(), "{}", stderr(&created));
    let key = serde_json::from_str::<Value>(stdout(&created).trim()).unwrap()["site_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let edited = run(cli(d).args(["site", "edit", &key, "--verifier", "hcaptcha", "--disable"]));
    assert!(edited.status.success(), "{}", stderr(&edited));
    let unknown = run(cli(d).args(["site", "edit", &key, "--verifier", "nope"]));
    assert!(!unknown.status.success());
    let conn = rusqlite::Connection::open(d.join("db/forwarder.db")).unwrap();
    let (verifier, enabled, sealed): (String, bool, Vec<u8>) = conn
        .query_row(
            "SELECT verifier, enabled, verifier_secret FROM sites",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((verifier.as_str(), enabled), ("hcaptcha", false));
    assert!(!String::from_utf8_lossy(&sealed).contains("cli-secret"));
}

async fn post_token(base: &str, key: &str, token: &str) -> Option<u16> {
    awc::Client::builder()
        .disable_redirects()
        .timeout(Duration::from_secs(10))
        .finish()
        .post(format!("{base}/f/{key}"))
        .insert_header(("Accept", "application/json"))
        .send_form(&[("n", "1"), ("caputchin-token", token)])
        .await
        .ok()
        .map(|r| r.status().as_u16())
}

/// Posts every token, 32 at a time; each with the status it got (`None`: no answer).
async fn post_tokens(base: &str, key: &str, tokens: Vec<String>) -> Vec<(String, Option<u16>)> {
    use futures_util::StreamExt as _;
    futures_util::stream::iter(tokens)
        .map(|t| async move {
            let status = post_token(base, key, &t).await;
            (t, status)
        })
        .buffer_unordered(32)
        .collect()
        .await
}

#[actix_web::test]
async fn a_kill_9_under_load_loses_no_accepted_token_and_leaves_a_consistent_database() {
    use futures_util::StreamExt as _;
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::receiver::Receiver::start();
    let (key, _) = receiving_site(dir.path(), &receiver.url());
    let env = [
        ("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8"),
        ("CAPUTCHIN_RATE_LIMIT_PER_MIN", "1000000"),
    ];
    let (mut child, port, _logs) = serve(dir.path(), &env);
    let base = format!("http://127.0.0.1:{port}");
    let tokens: Vec<String> = futures_util::stream::iter(0..300)
        .map(|_| token_from(&base, &key))
        .buffer_unordered(16)
        .collect()
        .await;

    // Half the load is answered; the other half is cut by kill -9 in flight.
    let first = post_tokens(&base, &key, tokens[..150].to_vec()).await;
    let in_flight = actix_web::rt::spawn({
        let (base, key, rest) = (base.clone(), key.clone(), tokens[150..].to_vec());
        async move { post_tokens(&base, &key, rest).await }
    });
    actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();
    let second = in_flight.await.unwrap();
    let accepted: Vec<String> = first
        .iter()
        .chain(second.iter())
        .filter(|(_, s)| *s == Some(200))
        .map(|(t, _)| t.clone())
        .collect();
    assert!(accepted.len() >= 150, "the first half was answered");

    let db = dir.path().join("db/forwarder.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
        .unwrap();
    let rolled: i64 = conn
        .query_row(
            "SELECT COALESCE(SUM(count), 0) FROM delivery_hourly",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(rows, rolled, "rollups agree with the delivery rows");
    let delivered: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM deliveries WHERE outcome = 'delivered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Statistics records are committed behind the answers, within 10 ms: the kill may take the
    // records of the last moment with it, never those of posts answered well before it (the
    // first half was answered at least 60 ms before the kill).
    let accepted_early = first.iter().filter(|(_, s)| *s == Some(200)).count();
    assert_eq!(accepted_early, 150);
    assert!(
        delivered as usize >= accepted_early,
        "every submission accepted well before the crash was recorded ({delivered} < {accepted_early})"
    );
    assert!(
        delivered as usize <= accepted.len() + 32,
        "no phantom records"
    );
    drop(conn);

    let (mut again, port, _logs) = serve(dir.path(), &env);
    let base = format!("http://127.0.0.1:{port}");
    // A delivery cut by the kill may have reached the receiver without being recorded.
    let received_before = receiver.requests().len();
    assert!(received_before as i64 >= rows);
    for token in &accepted {
        assert_eq!(
            post_token(&base, &key, token).await,
            Some(403),
            "a token accepted before the crash was accepted again"
        );
    }
    assert_eq!(
        receiver.requests().len(),
        received_before,
        "no replay reached the receiver"
    );
    again.kill().unwrap();
    again.wait().unwrap();
}

#[test]
fn site_stats_prints_the_dashboards_numbers() {
    use caputchin_forwarder::clock::Clock as _;
    use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};
    let dir = tempfile::tempdir().unwrap();
    let receiver = crate::receiver::Receiver::start();
    let (key, _) = receiving_site(dir.path(), &receiver.url());
    let listed = run(cli(dir.path()).args(["site", "list", "--json"]));
    let listed: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
    let site_id = listed["sites"][0]["site_id"].as_str().unwrap().to_owned();
    let conn = rusqlite::Connection::open(dir.path().join("db/forwarder.db")).unwrap();
    let now = caputchin_forwarder::clock::SystemClock.now_ms();
    for (destination, outcome, status, latency) in [
        (Destination::Webhook, Outcome::Delivered, Some(200), 20),
        (Destination::Webhook, Outcome::Delivered, Some(200), 40),
        (Destination::Webhook, Outcome::Http5xx, Some(503), 60),
        (Destination::Email, Outcome::Delivered, None, 30),
        (Destination::Email, Outcome::Smtp4xx, None, 50),
    ] {
        let report = Report {
            outcome,
            http_status: status,
            latency_ms: latency,
            resolved: Vec::new(),
            connected_to: None,
            response_body: None,
            smtp_code: None,
            smtp_reply: None,
            detail: String::new(),
        };
        caputchin_forwarder::stats::record_delivery_sync(
            &conn,
            &site_id,
            now,
            destination,
            Kind::Real,
            &report,
        )
        .unwrap();
    }
    caputchin_forwarder::stats::record_rejection_sync(&conn, &site_id, now, "missing-token")
        .unwrap();
    drop(conn);
    assert!(
        run(cli(dir.path())
            .env("CAPUTCHIN_EGRESS_ALLOW", "127.0.0.0/8")
            .args(["site", "test", &key]))
        .status
        .success()
    );

    let out = run(cli(dir.path()).args(["site", "stats", &key, "--range", "today", "--json"]));
    let text = run(cli(dir.path()).args(["site", "stats", &key, "--range", "today"]));
    let bad = run(cli(dir.path()).args(["site", "stats", &key, "--range", "forever"]));

    assert!(out.status.success(), "{}", stderr(&out));
    let stats: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    // Every destination together at the top, each on its own under `destinations`.
    assert_eq!(stats["delivered"], 3);
    assert_eq!(stats["failed"], 2);
    assert_eq!(stats["p50_ms"], 40);
    assert_eq!(stats["p95_ms"], 60);
    assert_eq!(stats["rejected_by_reason"]["missing-token"], 1);
    assert_eq!(stats["failures_by_category"]["http-5xx"], 1);
    assert_eq!(stats["failures_by_category"]["smtp-4xx"], 1);
    let webhook = &stats["destinations"]["webhook"];
    let email = &stats["destinations"]["email"];
    assert_eq!(
        (&webhook["delivered"], &webhook["failed"]),
        (&2.into(), &1.into())
    );
    assert_eq!(
        (&email["delivered"], &email["failed"]),
        (&1.into(), &1.into())
    );
    assert_eq!(webhook["failures"]["http-5xx"], 1);
    assert_eq!(webhook["failures"].as_object().unwrap().len(), 8);
    assert!(webhook["failures"].get("smtp-4xx").is_none());
    assert_eq!(email["failures"]["smtp-4xx"], 1);
    assert_eq!(email["failures"]["auth"], 0);
    assert_eq!(email["failures"].as_object().unwrap().len(), 6);
    assert_eq!(email["success_rate"], 0.5);
    assert_eq!(
        (&webhook["p50_ms"], &webhook["p95_ms"]),
        (&40.into(), &60.into())
    );
    assert_eq!(
        (&email["p50_ms"], &email["p95_ms"]),
        (&30.into(), &50.into())
    );
    assert_eq!(stats["test_deliveries"], 1);
    assert!(stdout(&text).contains("delivered      3"));
    assert!(stdout(&text).contains("email    failed    1"));
    assert!(stdout(&text).contains("email    latency   p50 30 ms, p95 50 ms"));
    assert!(!bad.status.success());
}

#[test]
fn in_json_mode_a_failing_command_reports_its_error_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(cli(dir.path()).env("CAPUTCHIN_LOG_FORMAT", "json").args([
        "site",
        "delete",
        "cpt_pub_0123456789abcdef01234567",
        "--yes",
    ]));
    assert!(!out.status.success());
    let err = stderr(&out);
    let lines: Vec<Value> = err
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"
            && l["error"]
                .as_str()
                .is_some_and(|e| e.contains("no site with key"))),
        "{err}"
    );
}

fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[actix_web::test]
async fn database_files_are_private_whatever_the_umask_and_readable_ones_are_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db/forwarder.db");
    let (mut child, port, logs) = serve_with(cli_with_umask(dir.path(), "000"), &[]);
    // A write, so the WAL holds something while the files are looked at.
    assert_eq!(
        create_account(dir.path(), "owner@example.com")
            .status
            .code(),
        Some(0)
    );
    let base = format!("http://127.0.0.1:{port}");
    assert_eq!(
        awc::Client::new()
            .get(format!("{base}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        mode_of(&dir.path().join("db")),
        0o700,
        "the database folder"
    );
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode_of(&file), 0o600, "{}", file.display());
    }
    let quiet = drain(&mut child, &logs);
    assert!(!quiet.contains("readable by other users"), "{quiet}");

    // A backup under the same umask is private too.
    let backup = dir.path().join("copy.db");
    let out = run(cli_with_umask(dir.path(), "000")
        .args(["backup", "--to"])
        .arg(&backup));
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode_of(&backup), 0o600);

    // A database made readable by others is named at start (and left as it is).
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (mut child, _, logs) = serve(dir.path(), &[]);
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;
    let warned = drain(&mut child, &logs);
    let line = warned
        .lines()
        .find(|l| l.contains("readable by other users"))
        .unwrap_or_else(|| panic!("no warning in\n{warned}"));
    assert!(
        line.contains("forwarder.db") && line.contains("644"),
        "{line}"
    );
    assert!(line.contains("WARN"), "{line}");
}

#[actix_web::test]
async fn the_setup_link_stops_working_when_another_process_creates_an_account() {
    let dir = tempfile::tempdir().unwrap();
    let (mut child, port, logs) = serve(dir.path(), &[]);
    let base = format!("http://127.0.0.1:{port}");
    let link = loop {
        let line = logs
            .recv_timeout(Duration::from_secs(10))
            .expect("the setup link is printed");
        if let Some(at) = line.find("/setup?token=") {
            break line[at..].trim().to_owned();
        }
    };
    let client = awc::Client::builder().disable_redirects().finish();
    let get = |path: String| {
        let client = &client;
        let base = &base;
        async move {
            let mut res = client.get(format!("{base}{path}")).send().await.unwrap();
            let cookie = res
                .headers()
                .get_all("set-cookie")
                .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
                .collect::<Vec<_>>()
                .join("; ");
            let body = String::from_utf8_lossy(&res.body().await.unwrap()).into_owned();
            (res.status().as_u16(), cookie, body)
        }
    };
    let (status, _, page) = get(link.clone()).await;
    assert_eq!(status, 200, "the link works while no account exists");
    let (_, _, login) = get("/login".into()).await;
    assert!(login.contains("No account exists yet"));

    // Another process makes the first account.
    assert_eq!(
        create_account(dir.path(), "cli@example.com").status.code(),
        Some(0)
    );

    let (status, _, _) = get(link.clone()).await;
    assert_eq!(status, 404, "the link is dead once an account exists");
    let (_, cookie, login) = get("/login".into()).await;
    assert!(!login.contains("No account exists yet"), "{login}");
    // A setup form opened before the account was made cannot create a second one.
    assert!(page.contains("Create the first account"));
    let login_csrf_at = login.find("name=\"csrf\" value=\"").unwrap() + 19;
    let csrf = &login[login_csrf_at..login_csrf_at + login[login_csrf_at..].find('"').unwrap()];
    let token = link.split("token=").nth(1).unwrap();
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", csrf)
        .append_pair("token", token)
        .append_pair("email", "setup@example.com")
        .append_pair("password", "a long enough password")
        .finish();
    let posted = client
        .post(format!("{base}/setup"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Cookie", cookie))
        .send_body(body)
        .await
        .unwrap();
    assert_eq!(posted.status().as_u16(), 404);
    drain(&mut child, &logs);
    let conn = rusqlite::Connection::open(dir.path().join("db/forwarder.db")).unwrap();
    let accounts: i64 = conn
        .query_row("SELECT COUNT(*) FROM accounts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(accounts, 1);
}

#[test]
fn json_output_stays_clean_with_logs_on_and_rotation_takes_a_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    create_account(dir.path(), "owner@example.com");
    // Settings from `.env` in the working directory, as the server reads them; logs at debug
    // with a loud egress exemption go to stderr only.
    std::fs::write(
        dir.path().join(".env"),
        "CAPUTCHIN_EGRESS_ALLOW=127.0.0.0/8\nRUST_LOG=debug\n",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("CAPUTCHIN_DATABASE", dir.path().join("db/forwarder.db"));
    let created = run(cmd.args([
        "site",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "Contact",
        "--webhook",
        "http://127.0.0.1:9/hook",
        "--json",
    ]));
    assert!(created.status.success(), "{}", stderr(&created));
    let site: Value = serde_json::from_str(&stdout(&created)).unwrap();
    let key = site["site_key"].as_str().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("CAPUTCHIN_DATABASE", dir.path().join("db/forwarder.db"));
    let tested = run(cmd.args(["site", "test", key, "--json"]));
    let report: Value = serde_json::from_str(&stdout(&tested))
        .unwrap_or_else(|e| panic!("stdout is one JSON object ({e}): {}", stdout(&tested)));
    // Nothing listens on port 9: `connect`, not `blocked-destination`, so `.env` was read.
    assert_eq!(report["deliveries"][0]["outcome"], "connect", "{report}");
    assert!(
        stderr(&tested).contains("test delivery"),
        "the log line went to stderr: {}",
        stderr(&tested)
    );

    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .current_dir(dir.path())
        .env("CAPUTCHIN_DATABASE", dir.path().join("db/forwarder.db"));
    let rotated = run(cmd.args(["site", "rotate-secret", key, "--grace", "24h", "--json"]));
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let rotated: Value = serde_json::from_str(&stdout(&rotated)).unwrap();
    let until = rotated["previous_secret_until"].as_i64().unwrap();
    assert!((started + 86_400_000..started + 86_460_000).contains(&until));

    let refused = run(cli(dir.path()).args(["site", "rotate-secret", key, "--grace", "2h"]));
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("use none, 1h or 24h"),
        "{}",
        stderr(&refused)
    );
    let none = run(cli(dir.path()).args(["site", "rotate-secret", key, "--json"]));
    let none: Value = serde_json::from_str(&stdout(&none)).unwrap();
    assert!(none["previous_secret_until"].is_null());
}
