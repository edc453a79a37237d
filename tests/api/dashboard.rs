//! The dashboard over HTTP (SPEC §6): accounts, sessions, CSRF, isolation between accounts,
//! site management, Test delivery and statistics.

use std::collections::HashMap;

use caputchin_forwarder::clock::Clock as _;
use caputchin_forwarder::delivery::{Destination, Kind, Outcome, Report};

use crate::helpers::{Answer, OWNER, TestApp, answer, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

/// A cookie-keeping client for one browser session.
pub struct Browser<'a> {
    app: &'a TestApp,
    pub cookies: HashMap<String, String>,
    /// Sent as `X-Forwarded-For`, as a reverse proxy in front of the forwarder would.
    pub forwarded_for: Option<String>,
}

impl<'a> Browser<'a> {
    pub fn new(app: &'a TestApp) -> Browser<'a> {
        Browser {
            app,
            cookies: HashMap::new(),
            forwarded_for: None,
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep(&mut self, answer: &Answer) {
        for value in answer.headers.get_all("set-cookie") {
            let text = value.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
    }

    pub async fn get(&mut self, path: &str) -> Answer {
        let mut req = self.app.client.get(self.app.url(path));
        if let Some(client) = &self.forwarded_for {
            req = req.insert_header(("X-Forwarded-For", client.as_str()));
        }
        if !self.cookies.is_empty() {
            req = req.insert_header(("Cookie", self.cookie_header()));
        }
        let answer = answer(req.send().await.unwrap()).await;
        self.keep(&answer);
        answer
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Answer {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut req = self
            .app
            .client
            .post(self.app.url(path))
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"));
        if let Some(client) = &self.forwarded_for {
            req = req.insert_header(("X-Forwarded-For", client.as_str()));
        }
        if !self.cookies.is_empty() {
            req = req.insert_header(("Cookie", self.cookie_header()));
        }
        let answer = answer(req.send_body(form.finish()).await.unwrap()).await;
        self.keep(&answer);
        answer
    }

    /// The CSRF token of the page at `path`.
    pub async fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path).await;
        csrf_in(&page.text)
    }

    pub async fn login(&mut self, email: &str, password: &str) -> Answer {
        let csrf = self.csrf("/login").await;
        self.post(
            "/login",
            &[("csrf", &csrf), ("email", email), ("password", password)],
        )
        .await
    }

    /// Posts a form on a page, with that page's CSRF token.
    pub async fn submit(&mut self, page: &str, action: &str, fields: &[(&str, &str)]) -> Answer {
        let csrf = self.csrf(page).await;
        let mut all = vec![("csrf", csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(action, &all).await
    }
}

pub fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("page has a CSRF field")
        + 19;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

pub fn location(answer: &Answer) -> &str {
    answer.headers.get("location").unwrap().to_str().unwrap()
}

pub async fn logged_in(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    let answer = browser.login(OWNER, PASSWORD).await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    browser
}

pub fn site_fields<'a>(name: &'a str, webhook: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("webhook_url", webhook),
        ("enabled", "on"),
        ("redirect_url", ""),
        ("allowed_origins", ""),
        ("challenge_count", "3"),
        ("difficulty", "2"),
    ]
}

/// Creates a site through the dashboard; returns (site id, secret).
pub async fn create_site(browser: &mut Browser<'_>, name: &str, webhook: &str) -> (String, String) {
    let answer = browser
        .submit("/sites/new", "/sites", &site_fields(name, webhook))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let text = &answer.text;
    let secret_at = text.find("cpt_sec_").unwrap();
    let secret = text[secret_at..secret_at + 8 + 48].to_owned();
    let id_at = text.find("/sites/site_").unwrap() + 7;
    let id = text[id_at..id_at + 5 + 16].to_owned();
    (id, secret)
}

#[actix_web::test]
async fn login_sets_a_fresh_http_only_cookie_and_logout_ends_the_session_on_the_server() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    browser.cookies.insert("cf_session".into(), "a".repeat(64));

    let answer = browser.login(OWNER, PASSWORD).await;

    assert_eq!(answer.status, 303);
    assert_eq!(location(&answer), "/dashboard");
    let set = answer
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("cf_session="))
        .unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "plain http public URL");
    let session = browser.cookies["cf_session"].clone();
    assert_ne!(
        session,
        "a".repeat(64),
        "a planted session id is never kept"
    );
    assert_eq!(browser.get("/dashboard").await.status, 200);

    let csrf = browser.csrf("/dashboard").await;
    let out = browser.post("/logout", &[("csrf", &csrf)]).await;
    assert_eq!(location(&out), "/login");
    let mut replay = Browser::new(&app);
    replay.cookies.insert("cf_session".into(), session);
    let after = replay.get("/dashboard").await;
    assert_eq!(after.status, 303, "the old session id no longer works");
    assert_eq!(location(&after), "/login");
}

#[actix_web::test]
async fn cookies_are_secure_when_the_public_url_is_https() {
    let app = spawn_app_with(|s| s.public_url = "https://forms.example.com".into()).await;
    let mut browser = Browser::new(&app);

    let answer = browser.login(OWNER, PASSWORD).await;

    let set: Vec<String> = answer
        .headers
        .get_all("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.iter().any(|c| c.starts_with("__Host-cf_session=")
            && c.contains("Secure")
            && c.contains("Path=/")
            && !c.to_ascii_lowercase().contains("domain=")),
        "{set:?}"
    );
}

#[actix_web::test]
async fn wrong_passwords_fail_and_repeated_failures_are_throttled() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);

    let wrong = browser.login(OWNER, "not the password").await;
    let unknown = browser.login("nobody@example.com", PASSWORD).await;
    for _ in 0..4 {
        browser.login(OWNER, "still wrong").await;
    }
    let throttled = browser.login(OWNER, PASSWORD).await;

    assert_eq!(wrong.status, 401);
    assert!(wrong.text.contains("Wrong email or password"));
    assert_eq!(unknown.status, 401);
    assert_eq!(throttled.status, 429, "even the right password waits");
    assert!(throttled.text.contains("Too many failed attempts"));
    app.clock.advance_ms(15 * 60 * 1000);
    assert_eq!(browser.login(OWNER, PASSWORD).await.status, 303);
}

/// Fails `MAX_FAILURES_PER_IP` logins (each for another unknown account, so that no account's
/// own limit applies) as the visitor `client`, then tries the owner's right password as `next`.
async fn owner_login_after_failures(app: &TestApp, client: &str, next: &str) -> u16 {
    use caputchin_forwarder::web::dashboard::auth::MAX_FAILURES_PER_IP;
    let mut browser = Browser::new(app);
    browser.forwarded_for = Some(client.to_owned());
    for i in 0..MAX_FAILURES_PER_IP {
        let failed = browser
            .login(&format!("guess{i}@example.com"), "wrong")
            .await;
        assert_eq!(failed.status, 401);
    }
    browser.forwarded_for = Some(next.to_owned());
    browser.login(OWNER, PASSWORD).await.status
}

#[actix_web::test]
async fn behind_a_trusted_proxy_the_login_throttle_counts_each_visitor_apart() {
    let behind =
        spawn_app_with(|s| s.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    assert_eq!(
        owner_login_after_failures(&behind, "198.51.100.1", "198.51.100.1").await,
        429,
        "the guessing visitor waits"
    );
    assert_eq!(
        owner_login_after_failures(&behind, "198.51.100.2", "198.51.100.3").await,
        303,
        "another visitor behind the same proxy logs in"
    );
    // Without the proxy trusted, every visitor is the proxy, and one guesser locks all out.
    let untrusted = spawn_app().await;
    assert_eq!(
        owner_login_after_failures(&untrusted, "198.51.100.2", "198.51.100.3").await,
        429
    );
}

#[actix_web::test]
async fn pages_need_a_session_and_forms_need_the_csrf_token() {
    let app = spawn_app().await;
    let mut anonymous = Browser::new(&app);
    for path in ["/dashboard", "/sites/new", "/stats"] {
        let answer = anonymous.get(path).await;
        assert_eq!(answer.status, 303, "{path}");
        assert_eq!(location(&answer), "/login");
    }
    let no_csrf = anonymous
        .post("/login", &[("email", OWNER), ("password", PASSWORD)])
        .await;
    assert_eq!(no_csrf.status, 403);

    let mut browser = logged_in(&app).await;
    let fields = site_fields("Sneaky", "https://hooks.example.com/x");
    let missing = browser.post("/sites", &fields).await;
    let mut wrong = vec![("csrf", "0123456789abcdef0123456789abcdef")];
    wrong.extend_from_slice(&fields);
    let wrong = browser.post("/sites", &wrong).await;

    assert_eq!(missing.status, 403);
    assert_eq!(wrong.status, 403);
    assert!(wrong.text.contains("nothing was changed"));
    assert_eq!(app.db_count("SELECT COUNT(*) FROM sites"), 0);

    let (id, _) = create_site(&mut browser, "Real", "https://hooks.example.com/x").await;
    let delete = browser
        .post(
            &format!("/sites/{id}/delete"),
            &[("csrf", "bad"), ("confirm", "yes")],
        )
        .await;
    let rotate = browser.post(&format!("/sites/{id}/rotate"), &[]).await;
    assert_eq!(delete.status, 403);
    assert_eq!(rotate.status, 403);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM sites"), 1);
}

#[actix_web::test]
async fn another_accounts_site_is_404_on_every_site_route_and_is_not_changed() {
    let app = spawn_app().await;
    let mut owner = logged_in(&app).await;
    let (id, _) = create_site(&mut owner, "Mine", &app.receiver.url()).await;
    caputchin_forwarder::accounts::create_account(
        &app.state.store,
        "other@example.com",
        PASSWORD,
        1,
    )
    .unwrap();
    let mut other = Browser::new(&app);
    assert_eq!(other.login("other@example.com", PASSWORD).await.status, 303);
    let csrf = other.csrf("/dashboard").await;

    for path in ["", "/edit", "/stats", "/delete"] {
        let answer = other.get(&format!("/sites/{id}{path}")).await;
        assert_eq!(answer.status, 404, "GET {path}");
    }
    let fields = site_fields("Stolen", "https://evil.test/");
    let mut edit = vec![("csrf", csrf.as_str())];
    edit.extend_from_slice(&fields);
    for (path, body) in [
        ("/edit", edit),
        ("/test", vec![("csrf", csrf.as_str())]),
        ("/rotate", vec![("csrf", csrf.as_str())]),
        ("/delete", vec![("csrf", csrf.as_str()), ("confirm", "yes")]),
    ] {
        let answer = other.post(&format!("/sites/{id}{path}"), &body).await;
        assert_eq!(answer.status, 404, "POST {path}");
    }
    assert!(!other.get("/dashboard").await.text.contains("Mine"));
    assert_eq!(app.receiver.connection_count(), 0);
    assert_eq!(
        app.db_count(
            "SELECT COUNT(*) FROM sites WHERE name = 'Mine' AND webhook_url NOT LIKE '%evil%'"
        ),
        1
    );
}

#[actix_web::test]
async fn each_site_form_error_is_shown_next_to_its_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let cases: [(&str, &str, &str); 7] = [
        ("name", "", "name-error"),
        ("webhook_url", "ftp://x.test/", "webhook-error"),
        ("webhook_url", "https://u:p@x.test/", "webhook-error"),
        ("redirect_url", "/thanks", "redirect-error"),
        ("allowed_origins", "https://a.test/path", "origins-error"),
        ("difficulty", "9", "aria-invalid"),
        ("challenge_count", "many", "aria-invalid"),
    ];
    for (field, value, marker) in cases {
        let mut fields = site_fields("Contact", "https://hooks.example.com/x");
        for f in fields.iter_mut() {
            if f.0 == field {
                f.1 = value;
            }
        }
        let answer = browser.submit("/sites/new", "/sites", &fields).await;
        assert_eq!(answer.status, 422, "{field}={value}");
        assert!(answer.text.contains(marker), "{field}: {}", answer.text);
        assert!(answer.text.contains("Please correct"), "{field}");
    }
    assert_eq!(app.db_count("SELECT COUNT(*) FROM sites"), 0);
}

#[actix_web::test]
async fn a_site_is_created_shown_edited_rotated_and_deleted() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;

    let (id, secret) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    let page = browser.get(&format!("/sites/{id}")).await;
    let key = {
        let at = page.text.find("cpt_pub_").unwrap();
        page.text[at..at + 32].to_owned()
    };
    assert!(page.text.contains(&format!("/f/{key}")), "forwarder URL");
    assert!(
        page.text.contains("&#60;caputchin-widget sitekey=&#34;"),
        "widget snippet"
    );
    assert!(
        page.text
            .contains("data-cap-hidden-field-name=&#34;caputchin-token&#34;")
    );
    assert!(
        !page.text.contains(&secret),
        "the secret is shown only once"
    );
    assert!(
        !page.text.contains("secret-path"),
        "the webhook URL is masked"
    );
    let listed = browser.get("/dashboard").await;
    assert!(listed.text.contains("Contact") && listed.text.contains(&key));

    let edited = browser
        .submit(
            &format!("/sites/{id}/edit"),
            &format!("/sites/{id}/edit"),
            &site_fields("Contact form", &app.receiver.url()),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert!(edited.text.contains("Saved."));
    assert!(
        edited
            .text
            .contains("127.0.0.1 resolves to 127.0.0.1: delivery is allowed"),
        "{}",
        edited.text
    );

    let token = app.solve_token(&key).await;
    let rotated = browser
        .submit(
            &format!("/sites/{id}/rotate"),
            &format!("/sites/{id}/rotate"),
            &[("confirm", "yes"), ("grace", "none")],
        )
        .await;
    let new_secret = {
        let at = rotated.text.find("cpt_sec_").unwrap();
        rotated.text[at..at + 56].to_owned()
    };
    assert_ne!(new_secret, secret);
    assert_eq!(
        app.siteverify(&secret, &token).await.json["error-codes"][0],
        "invalid-input-secret"
    );
    assert_eq!(
        app.siteverify(&new_secret, &token).await.json["success"],
        true
    );

    let confirm = browser.get(&format!("/sites/{id}/delete")).await;
    assert!(confirm.text.contains("cannot be undone"));
    let deleted = browser
        .submit(
            &format!("/sites/{id}/delete"),
            &format!("/sites/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(location(&deleted), "/dashboard?deleted=1");
    assert_eq!(browser.get(&format!("/sites/{id}")).await.status, 404);
    assert_eq!(app.db_count("SELECT COUNT(*) FROM sites"), 0);
    assert!(
        app.state.sites.get(&key).is_none(),
        "the forwarder no longer knows the key"
    );
}

#[actix_web::test]
async fn saving_a_blocked_webhook_says_delivery_would_be_blocked() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", "https://hooks.example.com/x").await;

    let edited = browser
        .submit(
            &format!("/sites/{id}/edit"),
            &format!("/sites/{id}/edit"),
            &site_fields("Contact", "http://10.1.2.3/hook"),
        )
        .await;

    assert!(
        edited
            .text
            .contains("delivery would be blocked (10.1.2.3 is in 10.0.0.0/8 (private))"),
        "{}",
        edited.text
    );
}

#[actix_web::test]
async fn test_delivery_shows_the_outcome_and_the_receiver_gets_it_even_when_disabled() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let webhook = app.receiver.url();
    let mut fields = site_fields("Contact", &webhook);
    fields.retain(|f| f.0 != "enabled");
    let answer = browser.submit("/sites/new", "/sites", &fields).await;
    let id_at = answer.text.find("/sites/site_").unwrap() + 7;
    let id = answer.text[id_at..id_at + 21].to_owned();

    let result = browser
        .submit(&format!("/sites/{id}"), &format!("/sites/{id}/test"), &[])
        .await;

    assert_eq!(result.status, 200);
    assert!(
        result
            .text
            .contains("<strong>delivered</strong> · HTTP 200"),
        "{}",
        result.text
    );
    assert!(result.text.contains("127.0.0.1"));
    assert!(result.text.contains("{&#34;received&#34;:true}"));
    assert_eq!(app.receiver.requests().len(), 1);
    assert_eq!(
        app.receiver.requests()[0].header("x-caputchin-test"),
        Some("1")
    );
}

pub fn tile(html: &str, id: &str) -> String {
    let start = html.find(&format!("id=\"{id}\">")).unwrap() + id.len() + 6;
    html[start..start + html[start..].find('<').unwrap()].to_owned()
}

#[actix_web::test]
async fn statistics_tiles_equal_the_recorded_deliveries() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    let now = app.clock.now_ms();
    let report = |outcome, status, latency_ms| Report {
        outcome,
        http_status: status,
        latency_ms,
        resolved: Vec::new(),
        connected_to: None,
        response_body: None,
        smtp_code: None,
        smtp_reply: None,
        detail: String::new(),
    };
    let record = |destination, kind, r: Report| {
        let store = app.state.store.clone();
        let id = id.clone();
        async move {
            caputchin_forwarder::stats::record_delivery(&store, &id, now, destination, kind, &r)
                .await
                .unwrap();
        }
    };
    // Webhook: 8 delivered at 10..=80 ms, a 5xx at 90 and a timeout at 100. Email: 3 delivered
    // and an smtp-5xx at 50 ms, a timeout at 100. Nearest-rank over all 15: p50 = 50, p95 = 100.
    for i in 1..=8u64 {
        let r = report(Outcome::Delivered, Some(200), i * 10);
        record(Destination::Webhook, Kind::Real, r).await;
    }
    for (outcome, status, latency) in [
        (Outcome::Http5xx, Some(500), 90),
        (Outcome::Timeout, None, 100),
    ] {
        record(
            Destination::Webhook,
            Kind::Real,
            report(outcome, status, latency),
        )
        .await;
    }
    for (outcome, latency) in [
        (Outcome::Delivered, 50),
        (Outcome::Delivered, 50),
        (Outcome::Delivered, 50),
        (Outcome::Smtp5xx, 50),
        (Outcome::Timeout, 100),
    ] {
        record(
            Destination::Email,
            Kind::Real,
            report(outcome, None, latency),
        )
        .await;
    }
    let t = report(Outcome::Delivered, Some(200), 5);
    record(Destination::Webhook, Kind::Test, t).await;
    for reason in ["missing-token", "missing-token", "invalid-token"] {
        caputchin_forwarder::stats::record_rejection(&app.state.store, &id, now, reason);
    }
    app.state.store.flush().await.unwrap();

    let page = browser.get(&format!("/sites/{id}/stats?range=today")).await;

    assert_eq!(page.status, 200);
    assert_eq!(tile(&page.text, "tile-webhook-delivered"), "8");
    assert_eq!(tile(&page.text, "tile-webhook-failed"), "2");
    assert_eq!(tile(&page.text, "tile-email-delivered"), "3");
    assert_eq!(tile(&page.text, "tile-email-failed"), "2");
    assert_eq!(tile(&page.text, "tile-rejected"), "3");
    assert_eq!(tile(&page.text, "tile-success"), "73.3%");
    assert_eq!(tile(&page.text, "tile-p50"), "50 ms");
    assert_eq!(tile(&page.text, "tile-p95"), "100 ms");
    assert!(page.text.contains("counted apart: 1."));
    assert!(page.text.contains("<svg"));
    // Failures by category, one table per destination, each with its own categories.
    let failures = |destination: &str| {
        let start = page
            .text
            .find(&format!("<table id=\"failures-{destination}\">"))
            .unwrap();
        let end = start + page.text[start..].find("</table>").unwrap();
        page.text[start..end].to_owned()
    };
    let (webhook, email) = (failures("webhook"), failures("email"));
    assert!(webhook.contains("<code>http-5xx</code></td><td class=\"num\">1"));
    assert!(webhook.contains("<code>timeout</code></td><td class=\"num\">1"));
    assert!(webhook.contains("<code>blocked-destination</code></td><td class=\"num\">0"));
    assert!(!webhook.contains("smtp-5xx"));
    assert!(email.contains("<code>smtp-5xx</code></td><td class=\"num\">1"));
    assert!(email.contains("<code>timeout</code></td><td class=\"num\">1"));
    assert!(email.contains("<code>auth</code></td><td class=\"num\">0"));
    assert!(!email.contains("http-5xx"));
    assert!(
        page.text
            .contains("<td data-label=\"Destination\">email</td>")
    );
    assert!(
        page.text
            .contains("<td data-label=\"Destination\">webhook</td>")
    );
    assert!(
        page.text
            .contains("<code>missing-token</code></td><td class=\"num\">2")
    );
    assert!(
        page.text.contains("badge test"),
        "the test delivery is labelled"
    );
    let yesterday = browser
        .get(&format!("/sites/{id}/stats?range=yesterday"))
        .await;
    assert_eq!(tile(&yesterday.text, "tile-webhook-delivered"), "0");
    assert_eq!(tile(&yesterday.text, "tile-email-delivered"), "0");
    let account = browser.get("/stats?range=all").await;
    assert_eq!(tile(&account.text, "tile-webhook-delivered"), "8");
    assert_eq!(tile(&account.text, "tile-email-failed"), "2");
}

#[actix_web::test]
async fn sign_up_is_closed_by_default_and_open_when_configured() {
    let closed = spawn_app().await;
    assert_eq!(Browser::new(&closed).get("/signup").await.status, 404);

    let open = spawn_app_with(|s| s.signup = caputchin_forwarder::config::Signup::Open).await;
    let mut browser = Browser::new(&open);
    let answer = browser
        .submit(
            "/signup",
            "/signup",
            &[
                ("email", "new@example.com"),
                ("password", "a long password"),
            ],
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(browser.get("/dashboard").await.status, 200);
    let short = Browser::new(&open)
        .submit(
            "/signup",
            "/signup",
            &[("email", "x@example.com"), ("password", "short")],
        )
        .await;
    assert_eq!(short.status, 422);
}

#[actix_web::test]
async fn the_setup_link_creates_the_first_account_once() {
    let dir = tempfile::tempdir().unwrap();
    let settings =
        caputchin_forwarder::config::Settings::defaults_with_database(dir.path().join("db"));
    let built = caputchin_forwarder::app::Application::build(settings)
        .await
        .unwrap();
    let url = built
        .setup_url()
        .expect("a setup link while no account exists");
    let path = url.split_once("127.0.0.1:").unwrap().1;
    let path = &path[path.find('/').unwrap()..];
    let token = url.rsplit("token=").next().unwrap().to_owned();
    let base = format!("http://127.0.0.1:{}", built.port());
    actix_web::rt::spawn(built.run_until_stopped());
    let client = awc::Client::builder().disable_redirects().finish();

    let wrong = client
        .get(format!("{base}/setup?token=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    let mut page = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let cookie = page
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let html = String::from_utf8(page.body().await.unwrap().to_vec()).unwrap();
    let csrf = csrf_in(&html);
    let body =
        format!("csrf={csrf}&token={token}&email=first%40example.com&password=first+account+pw");
    let created = client
        .post(format!("{base}/setup"))
        .insert_header(("Cookie", cookie.clone()))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body(body.clone())
        .await
        .unwrap();
    assert_eq!(created.status(), 303);
    let again = client
        .post(format!("{base}/setup"))
        .insert_header(("Cookie", cookie))
        .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
        .send_body(body.replace("first%40", "second%40"))
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "the link is single-use");
}

#[actix_web::test]
async fn every_page_carries_the_security_headers_and_no_inline_script_is_allowed() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    let page = browser.get(&format!("/sites/{id}")).await;
    let key = {
        let at = page.text.find("cpt_pub_").unwrap();
        page.text[at..at + 32].to_owned()
    };

    let mut pages = vec![];
    for path in [
        "/login".to_owned(),
        "/dashboard".to_owned(),
        format!("/sites/{id}"),
        format!("/sites/{id}/edit"),
        format!("/sites/{id}/stats"),
        "/sites/site_0000000000000000".to_owned(),
        "/stats".to_owned(),
    ] {
        pages.push((path.clone(), browser.get(&path).await));
    }
    pages.push((
        "/f/… (error page)".into(),
        app.post_form(&key, &[("a", "b")]).await,
    ));
    pages.push((
        "/f/… (preview)".into(),
        Browser::new(&app).get(&format!("/f/{key}")).await,
    ));

    for (path, page) in &pages {
        let header = |name: &str| {
            page.headers
                .get(name)
                .unwrap_or_else(|| panic!("{path}: no {name}"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = header("content-security-policy");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        let scripts = csp
            .split(';')
            .find(|d| d.trim().starts_with("script-src"))
            .unwrap_or_else(|| panic!("{path}: no script-src in {csp}"));
        assert!(!scripts.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        assert!(!header("referrer-policy").is_empty(), "{path}");
        assert!(
            !page.text.contains("<script>"),
            "{path}: an inline script would be blocked"
        );
    }
}

#[actix_web::test]
async fn the_site_page_offers_caputchins_own_widget_built_for_this_forwarder_as_a_third_snippet() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", &app.receiver.url()).await;

    let page = browser.get(&format!("/sites/{id}")).await;

    let key = {
        let at = page.text.find("cpt_pub_").unwrap();
        page.text[at..at + 32].to_owned()
    };
    let public_url = &app.state.settings.public_url;
    assert!(
        page.text
            .contains("With Caputchin's own <code>@caputchin/widget</code> 3.x")
    );
    assert!(page.text.contains(&format!(
        "<code id=\"build-caputchin\">CAPUTCHIN_API_HOST={public_url} pnpm exec tsup</code>"
    )));
    let snippet = {
        let start = page.text.find("id=\"snippet-caputchin\"").unwrap();
        let body = &page.text[start..];
        let body = &body[body.find('>').unwrap() + 1..];
        body[..body.find("</textarea>").unwrap()].to_owned()
    };
    // Askama escapes the snippet for the textarea; the browser shows it as written.
    let shown = snippet
        .replace("&#60;", "<")
        .replace("&#62;", ">")
        .replace("&#34;", "\"")
        .replace("&#39;", "'")
        .replace("&#38;", "&");
    assert!(shown.starts_with("<script src=\"/caputchin/widget.js\"></script>\n"));
    assert!(shown.contains(&format!(
        "<form action=\"{public_url}/f/{key}\" method=\"POST\""
    )));
    assert!(shown.contains(&format!(
        "<caputchin-widget sitekey=\"{key}\" trigger=\"form-submit\"></caputchin-widget>"
    )));
    assert!(
        !shown.contains("api-host") && !shown.contains("/widget.js\" async"),
        "the verify host comes from the build, not from our widget: {shown}"
    );
    for directive in [
        "worker-src blob:".to_owned(),
        format!("connect-src 'self' {public_url}"),
        "'wasm-unsafe-eval'".to_owned(),
        "style-src 'unsafe-inline'".to_owned(),
    ] {
        assert!(page.text.contains(&directive), "{directive}");
    }
    // The other two stay.
    assert!(page.text.contains("id=\"snippet-widget\""));
    assert!(page.text.contains("id=\"snippet-cap\""));
}
