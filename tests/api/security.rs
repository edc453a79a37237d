//! Hardening (README, "Security"): parallel login guesses, lockouts that spare the owner, the
//! setup link once an account exists, slow request bodies, the Cap and siteverify budgets, and
//! CORS answers to refused origins.

use std::time::{Duration, Instant};

use caputchin_forwarder::web::dashboard::auth::{
    MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_IP, THROTTLE_WINDOW_MS,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::dashboard::Browser;
use crate::helpers::{Answer, OWNER, TestApp, answer, site_input, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

/// An app behind a trusted proxy on 127.0.0.1 (so each test visitor names its own address), with
/// metrics counting.
async fn proxied_app() -> TestApp {
    spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await
}

/// The value of one series on the app's metrics listener.
async fn metric(app: &TestApp, series: &str) -> f64 {
    let port = app.metrics_port.unwrap();
    let text = answer(
        app.client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap(),
    )
    .await
    .text;
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from\n{text}"))
}

/// How many logins ran the password hash (a success or a failure; a throttled one did not).
async fn hashed_logins(app: &TestApp) -> f64 {
    metric(app, r#"caputchin_dashboard_logins_total{result="failure"}"#).await
        + metric(app, r#"caputchin_dashboard_logins_total{result="success"}"#).await
}

/// A visitor at `address` with the login form's cookie and CSRF token.
async fn visitor<'a>(app: &'a TestApp, address: &str) -> (Browser<'a>, String) {
    let mut browser = Browser::new(app);
    browser.forwarded_for = Some(address.to_owned());
    let csrf = browser.csrf("/login").await;
    (browser, csrf)
}

/// Posts one login as `browser` without waiting for anything else (so many can run at once).
async fn login_post(app: &TestApp, browser: &Browser<'_>, csrf: &str, password: &str) -> Answer {
    let cookies = browser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("csrf", csrf)
        .append_pair("email", OWNER)
        .append_pair("password", password)
        .finish();
    let req = app
        .client
        .post(app.url("/login"))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .insert_header(("Cookie", cookies))
        .insert_header((
            "X-Forwarded-For",
            browser.forwarded_for.clone().unwrap_or_default(),
        ));
    answer(req.send_body(body).await.unwrap()).await
}

#[actix_web::test]
async fn parallel_guesses_each_consume_an_attempt_and_the_owner_still_gets_in_from_elsewhere() {
    let app = proxied_app().await;
    let (guesser, csrf) = visitor(&app, "203.0.113.50").await;

    let wrong: Vec<String> = (0..50).map(|i| format!("wrong guess {i}")).collect();
    let guesses: Vec<_> = wrong
        .iter()
        .map(|password| login_post(&app, &guesser, &csrf, password))
        .collect();
    let answers = futures_util::future::join_all(guesses).await;
    let unauthorized = answers.iter().filter(|a| a.status == 401).count();
    let throttled: Vec<_> = answers.iter().filter(|a| a.status == 429).collect();
    assert_eq!(unauthorized, MAX_FAILURES_PER_ADDRESS, "401s");
    assert_eq!(throttled.len(), 50 - MAX_FAILURES_PER_ADDRESS, "429s");
    assert!(
        throttled
            .iter()
            .all(|a| a.headers.contains_key("retry-after"))
    );
    assert_eq!(
        hashed_logins(&app).await,
        MAX_FAILURES_PER_ADDRESS as f64,
        "only the reserved attempts reach the password hash"
    );

    // The right password from the guessing address waits for the window too.
    let right = login_post(&app, &guesser, &csrf, PASSWORD).await;
    assert_eq!(right.status, 429, "{}", right.text);
    assert!(right.text.contains("Too many failed attempts"));
    assert_eq!(hashed_logins(&app).await, MAX_FAILURES_PER_ADDRESS as f64);

    // The owner, from an address with no failures, is not locked out by the guesses.
    let (mut owner, _) = visitor(&app, "198.51.100.7").await;
    let signed_in = owner.login(OWNER, PASSWORD).await;
    assert_eq!(signed_in.status, 303, "{}", signed_in.text);

    // Against guessing spread over addresses: once the account has its failures, a fresh
    // address gets one guess, and then waits.
    let (spread, spread_csrf) = visitor(&app, "192.0.2.77").await;
    assert_eq!(
        login_post(&app, &spread, &spread_csrf, "guess a")
            .await
            .status,
        401
    );
    assert_eq!(
        login_post(&app, &spread, &spread_csrf, "guess b")
            .await
            .status,
        429
    );
    assert_eq!(
        login_post(&app, &spread, &spread_csrf, PASSWORD)
            .await
            .status,
        429
    );

    // When the window has passed, the guessing address may log in with the right password.
    app.clock.advance_ms(THROTTLE_WINDOW_MS);
    let (guesser, csrf) = visitor(&app, "203.0.113.50").await;
    assert_eq!(
        login_post(&app, &guesser, &csrf, PASSWORD).await.status,
        303
    );
}

#[actix_web::test]
async fn an_address_spreading_guesses_over_accounts_is_stopped_at_its_own_bound() {
    let app = proxied_app().await;
    let (guesser, csrf) = visitor(&app, "203.0.113.60").await;
    let body = |i: usize| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("csrf", &csrf)
            .append_pair("email", &format!("user{i}@example.com"))
            .append_pair("password", "wrong wrong")
            .finish()
    };
    let cookies = guesser
        .cookies
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("; ");
    let posts = (0..MAX_FAILURES_PER_IP + 10).map(|i| {
        let req = app
            .client
            .post(app.url("/login"))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .insert_header(("Cookie", cookies.clone()))
            .insert_header(("X-Forwarded-For", "203.0.113.60"));
        let body = body(i);
        async move { answer(req.send_body(body).await.unwrap()).await.status }
    });
    let statuses = futures_util::future::join_all(posts).await;
    assert_eq!(
        statuses.iter().filter(|&&s| s == 401).count(),
        MAX_FAILURES_PER_IP
    );
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 10);
    assert_eq!(hashed_logins(&app).await, MAX_FAILURES_PER_IP as f64);
}

#[actix_web::test]
async fn the_setup_link_dies_once_an_account_exists_by_another_route() {
    // The test app starts with no account (so a setup token is made) and then creates the owner
    // through the library, as the CLI or the bootstrap settings would.
    let app = spawn_app_with(|_| {}).await;
    let token = app
        .setup_token
        .clone()
        .expect("a setup token was made while no account existed");

    let mut browser = Browser::new(&app);
    let login = browser.get("/login").await;
    assert!(
        !login.text.contains("No account exists yet"),
        "{}",
        login.text
    );
    assert_eq!(
        browser.get(&format!("/setup?token={token}")).await.status,
        404
    );
    let csrf = browser.csrf("/login").await;
    let posted = browser
        .post(
            "/setup",
            &[
                ("csrf", &csrf),
                ("token", &token),
                ("email", "second@example.com"),
                ("password", "another long password"),
            ],
        )
        .await;
    assert_eq!(posted.status, 404, "{}", posted.text);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM accounts"), 1);
}

/// Sends the headers of a POST announcing `length` body bytes, then `first` of them.
async fn open_body(
    app: &TestApp,
    path: &str,
    content_type: &str,
    length: usize,
    first: &[u8],
) -> tokio::net::TcpStream {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: {content_type}\r\n\
         Content-Length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(first).await.unwrap();
    stream
}

/// Reads the answer and then end-of-stream; the answer's text and how long both took.
async fn answer_then_close(
    stream: &mut (impl tokio::io::AsyncRead + Unpin),
    within: Duration,
) -> (String, Duration) {
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
            Err(_) => panic!(
                "still open after {within:?}; read so far: {:?}",
                String::from_utf8_lossy(&all)
            ),
        }
    }
    (
        String::from_utf8_lossy(&all).into_owned(),
        started.elapsed(),
    )
}

#[actix_web::test]
async fn bodies_that_stall_or_trickle_are_cut_off_with_408_on_every_route() {
    let app = spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.body_timeout = Duration::from_millis(1000);
    })
    .await;
    let site = app.create_receiving_site("Slow");
    let key = site.site_key.as_str().to_owned();
    let form = "application/x-www-form-urlencoded";
    let routes = [
        (format!("/f/{key}"), form),
        (format!("/v1/cap/{key}/redeem"), "application/json"),
        ("/v1/siteverify".to_owned(), "application/json"),
        ("/login".to_owned(), form),
    ];
    for (path, content_type) in &routes {
        // Idle: part of the body, then nothing.
        let mut idle = open_body(&app, path, content_type, 100, b"name=Ad").await;
        let (text, took) = answer_then_close(&mut idle, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{path} idle: {text}");
        assert!(text.contains("request-timeout"), "{path} idle: {text}");
        assert!(took < Duration::from_secs(4), "{path} idle took {took:?}");

        // Trickling: a byte every 200 ms, which would take 20 s in all.
        let trickle = open_body(&app, path, content_type, 100, b"n").await;
        let (mut read, mut write) = trickle.into_split();
        let writer = tokio::spawn(async move {
            for _ in 0..99 {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if write.write_all(b"a").await.is_err() {
                    return false;
                }
            }
            true
        });
        let (text, took) = answer_then_close(&mut read, Duration::from_secs(5)).await;
        assert!(text.starts_with("HTTP/1.1 408"), "{path} trickle: {text}");
        assert!(text.contains("request-timeout"), "{path} trickle: {text}");
        assert!(
            took < Duration::from_secs(4),
            "{path} trickle took {took:?}"
        );
        writer.abort();
    }

    // A body the handler never reads does not keep its connection either.
    let mut unread = open_body(
        &app,
        &format!("/v1/cap/{key}/challenge"),
        "text/plain",
        100,
        b"x",
    )
    .await;
    let (text, _) = answer_then_close(&mut unread, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");

    // Bodies that arrive in time are untouched.
    let token = app.solve_token(&key).await;
    let sent = app
        .post_form(&key, &[("name", "Ada"), ("caputchin-token", &token)])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
}

#[actix_web::test]
async fn cap_and_siteverify_have_their_own_budget_per_address_and_site() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.challenge_rate_limit_per_min = 3;
        s.redeem_rate_limit_per_min = 2;
        s.siteverify_rate_limit_per_min = 2;
        s.metrics_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let site = app.create_site(&site_input("Budget"));
    let other = app.create_site(&site_input("Other"));
    let key = site.site_key.as_str();
    let from = |ip: &'static str| vec![("X-Forwarded-For", ip)];
    let post =
        |path: String, body: serde_json::Value, headers: Vec<(&'static str, &'static str)>| {
            let app = &app;
            async move {
                app.post_with(
                    &path,
                    "application/json",
                    body.to_string().into_bytes(),
                    &headers,
                )
                .await
            }
        };
    let challenge =
        |k: &str, ip: &'static str| post(format!("/v1/cap/{k}/challenge"), json!({}), from(ip));

    for _ in 0..3 {
        assert_eq!(challenge(key, "198.51.100.1").await.status, 200);
    }
    let over = challenge(key, "198.51.100.1").await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(over.json["success"], false);
    assert_eq!(over.json["code"], "rate-limited");
    assert!(over.json["error"].as_str().is_some_and(|m| !m.is_empty()));
    let retry: u64 = over
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    // Another address, or another site, has its own budget.
    assert_eq!(challenge(key, "198.51.100.2").await.status, 200);
    assert_eq!(
        challenge(other.site_key.as_str(), "198.51.100.1")
            .await
            .status,
        200
    );

    let redeem = |ip: &'static str| {
        post(
            format!("/v1/cap/{key}/redeem"),
            json!({"token": "x.y", "solutions": []}),
            from(ip),
        )
    };
    for _ in 0..2 {
        assert_eq!(redeem("198.51.100.3").await.status, 403);
    }
    let over = redeem("198.51.100.3").await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(over.json["code"], "rate-limited");
    assert!(over.headers.contains_key("retry-after"));
    assert_eq!(redeem("198.51.100.4").await.status, 403);

    let verify = |secret: String, ip: &'static str| {
        post(
            "/v1/siteverify".into(),
            json!({"secret": secret, "response": "x"}),
            from(ip),
        )
    };
    for _ in 0..2 {
        let answered = verify(site.secret.clone(), "198.51.100.5").await;
        assert_eq!(answered.json["error-codes"][0], "invalid-input-response");
    }
    let over = verify(site.secret.clone(), "198.51.100.5").await;
    assert_eq!(over.status, 429, "{}", over.text);
    assert_eq!(
        over.json,
        json!({
            "success": false,
            "error-codes": ["rate-limited"],
            "platform": {"game_id": null, "score": null, "duration_ms": null},
        })
    );
    assert!(over.headers.contains_key("retry-after"));
    assert_eq!(
        verify(other.secret.clone(), "198.51.100.5").await.status,
        200
    );
    // Verifications that succeed do not count: a busy backend is not limited by its own traffic.
    let busy = app.create_site(&site_input("Busy"));
    for _ in 0..2 {
        let token = app.solve_token(busy.site_key.as_str()).await;
        let verified = post(
            "/v1/siteverify".into(),
            json!({"secret": busy.secret, "response": token}),
            from("198.51.100.8"),
        )
        .await;
        assert_eq!(verified.json["success"], true, "{}", verified.text);
    }
    for _ in 0..2 {
        assert_eq!(
            verify(busy.secret.clone(), "198.51.100.8").await.status,
            200
        );
    }
    assert_eq!(
        verify(busy.secret.clone(), "198.51.100.8").await.status,
        429
    );
    // Guessed secrets share one budget per address.
    for guess in ["a", "b"] {
        assert_eq!(
            verify(guess.into(), "198.51.100.6").await.json["error-codes"][0],
            "invalid-input-secret"
        );
    }
    assert_eq!(verify("c".into(), "198.51.100.6").await.status, 429);
    assert_eq!(
        metric(&app, r#"caputchin_siteverify_total{result="rate-limited"}"#).await,
        3.0
    );

    // The budget comes back with the next minute.
    app.clock.advance_ms(60_000);
    assert_eq!(challenge(key, "198.51.100.1").await.status, 200);
}

#[actix_web::test]
async fn a_failed_redeem_costs_no_more_storage_than_a_successful_one() {
    let app = spawn_app_with(|_| {}).await;
    let site = app.create_site(&site_input("Storage"));
    let key = site.site_key.as_str();
    let spent = || app.db_count("SELECT COUNT(*) FROM spent_challenges");
    let before = spent();
    for _ in 0..20 {
        app.solve_token(key).await;
    }
    let after_right = spent();
    for _ in 0..20 {
        let (token, mut solutions) = app.solved_challenge(key).await;
        // The next nonce may solve a difficulty-2 challenge too (1 in 256): step until it does not.
        let params = caputchin_forwarder::captcha::cap::ChallengeParams::new(3, 2).unwrap();
        loop {
            solutions[0] = solutions[0].wrapping_add(1);
            if !caputchin_forwarder::captcha::cap::verify_solutions(&token, params, &solutions) {
                break;
            }
        }
        let wrong = app
            .redeem(key, &json!({"token": token, "solutions": solutions}))
            .await;
        assert_eq!(wrong.status, 403, "{}", wrong.text);
        // Trying the same challenge again, and garbage, write nothing more.
        let again = app
            .redeem(key, &json!({"token": token, "solutions": solutions}))
            .await;
        assert_eq!(again.status, 403);
        let garbage = app
            .redeem(key, &json!({"token": "not.a-token", "solutions": [1]}))
            .await;
        assert_eq!(garbage.status, 403);
    }
    let after_wrong = spent();
    assert_eq!(after_right - before, 20);
    assert_eq!(
        after_wrong - after_right,
        20,
        "one row per failed challenge, as per success"
    );
}

#[actix_web::test]
async fn a_refused_origin_is_never_echoed_in_access_control_allow_origin() {
    let app = spawn_app_with(|_| {}).await;
    let mut input = site_input("Origins");
    input.allowed_origins = vec!["https://good.example".into()];
    let site = app.create_site(&input);
    let key = site.site_key.as_str();
    let evil = "https://evil.example";
    let answers = [
        app.challenge(key, Some(evil)).await,
        app.post_json(
            &format!("/v1/cap/{key}/redeem"),
            &json!({"token": "x", "solutions": []}),
            Some(evil),
        )
        .await,
        app.post_json(&format!("/f/{key}"), &json!({"name": "x"}), Some(evil))
            .await,
        app.preflight(&format!("/f/{key}"), evil).await,
    ];
    for refused in &answers {
        assert_eq!(refused.status, 403, "{}", refused.text);
        assert_eq!(
            refused.json["code"]
                .as_str()
                .or(refused.json["error"].as_str()),
            Some("origin-not-allowed")
        );
        assert!(
            !refused.headers.contains_key("access-control-allow-origin"),
            "{:?}",
            refused.headers
        );
    }
    let good = app.challenge(key, Some("https://good.example")).await;
    assert_eq!(
        good.headers.get("access-control-allow-origin").unwrap(),
        "https://good.example"
    );
}

/// The first line of the answer to `raw`, sent on a fresh connection.
async fn status_line(app: &TestApp, raw: &[u8]) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(raw).await.unwrap();
    let (text, _) = answer_then_close(&mut stream, Duration::from_secs(10)).await;
    text.lines().next().unwrap_or_default().to_owned()
}

#[actix_web::test]
async fn the_http_parser_takes_bare_lf_lines_and_refuses_ambiguous_framing() {
    // actix-http's choices, as the README states them: pinned so an upgrade that changes one is
    // noticed.
    let app = spawn_app_with(|_| {}).await;
    let close = "Connection: close";
    assert_eq!(
        status_line(
            &app,
            format!("GET /healthz HTTP/1.1\nHost: x\n{close}\n\n").as_bytes()
        )
        .await,
        "HTTP/1.1 200 OK"
    );
    for (what, raw) in [
        (
            "both framings",
            "POST /v1/siteverify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
        (
            "two lengths",
            "POST /v1/siteverify HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "obsolete line folding",
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  b\r\n\r\n",
        ),
    ] {
        assert_eq!(
            status_line(&app, raw.as_bytes()).await,
            "HTTP/1.1 400 Bad Request",
            "{what}"
        );
    }
}

#[actix_web::test]
async fn a_body_read_in_time_keeps_its_connection_for_the_next_request() {
    let app = spawn_app_with(|s| s.body_timeout = Duration::from_millis(1000)).await;
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let body = r#"{"secret":"nope","response":"x"}"#;
    let requests = format!(
        "POST /v1/siteverify HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}GET /healthz HTTP/1.1\r\nHost: {address}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(requests.as_bytes()).await.unwrap();
    // Past the body deadline: a kept connection must not be cut by it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (text, _) = answer_then_close(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
    assert!(
        text.contains("invalid-input-secret") && text.contains(r#""status":"ok""#),
        "{text}"
    );
}

#[actix_web::test]
async fn past_the_account_cap_the_owners_own_browser_still_gets_in_and_a_new_one_waits() {
    use caputchin_forwarder::web::dashboard::auth::{ACCOUNT_FAILURE_CAP, DEVICE_COOKIE};
    let app = proxied_app().await;
    // The owner's browser logs in once: it is known to the account from now on.
    let (mut owner, _) = visitor(&app, "198.51.100.9").await;
    assert_eq!(owner.login(OWNER, PASSWORD).await.status, 303);
    assert!(
        owner.cookies.contains_key(DEVICE_COOKIE),
        "{:?}",
        owner.cookies
    );
    owner.cookies.remove("cf_session");

    // Guesses spread over many addresses, one each, until the account reaches its cap.
    for i in 0..ACCOUNT_FAILURE_CAP {
        let (guesser, csrf) = visitor(&app, &format!("203.0.113.{}", i + 1)).await;
        assert_eq!(
            login_post(&app, &guesser, &csrf, "a wrong guess")
                .await
                .status,
            401,
            "{i}"
        );
    }
    // A browser never seen before, from a clean address, now waits, right password included.
    let (stranger, csrf) = visitor(&app, "192.0.2.200").await;
    let refused = login_post(&app, &stranger, &csrf, PASSWORD).await;
    assert_eq!(refused.status, 429, "{}", refused.text);
    // The owner's own browser, from a clean address, gets in.
    owner.forwarded_for = Some("192.0.2.201".into());
    assert_eq!(owner.login(OWNER, PASSWORD).await.status, 303);
    // A forged device cookie is worth nothing.
    let (mut forger, _) = visitor(&app, "192.0.2.202").await;
    forger.cookies.insert(DEVICE_COOKIE.into(), "00".repeat(16));
    assert_eq!(forger.login(OWNER, PASSWORD).await.status, 429);
}
