//! `spawn_app()` and the typed helpers every integration test uses.

use std::sync::Arc;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use caputchin_forwarder::app::Application;
use caputchin_forwarder::captcha::cap::{self, ChallengeParams};
use caputchin_forwarder::clock::{Clock, ManualClock};
use caputchin_forwarder::config::Settings;
use caputchin_forwarder::egress::resolve::{LookupFuture, Resolve};
use caputchin_forwarder::services::Dependencies;
use caputchin_forwarder::services::Services;
use caputchin_forwarder::sites::{self, CreatedSite, SiteInput};
use serde_json::{Value, json};

pub const OWNER: &str = "owner@example.com";

/// A resolver the test controls: each name answers its queued address lists in turn (the last one
/// repeats); unknown names fail. Every lookup is counted.
#[derive(Default)]
pub struct TestResolver {
    answers: Mutex<HashMap<String, Vec<Vec<IpAddr>>>>,
    pub lookups: AtomicUsize,
}

impl TestResolver {
    pub fn answer(&self, host: &str, answers: &[&[&str]]) {
        let parsed = answers
            .iter()
            .map(|a| a.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        self.answers.lock().unwrap().insert(host.to_owned(), parsed);
    }

    pub fn lookup_count(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }
}

impl Resolve for TestResolver {
    fn lookup<'a>(&'a self, host: &'a str, _port: u16) -> LookupFuture<'a> {
        Box::pin(async move {
            self.lookups.fetch_add(1, Ordering::SeqCst);
            let mut answers = self.answers.lock().unwrap();
            match answers.get_mut(host) {
                Some(queue) if queue.len() > 1 => Ok(queue.remove(0)),
                Some(queue) if queue.len() == 1 => Ok(queue[0].clone()),
                _ => Err(std::io::Error::other(format!("{host}: no such host"))),
            }
        })
    }
}

/// A running app on a loopback port with its own database and a clock the test controls.
pub struct TestApp {
    pub address: String,
    pub resolver: Arc<TestResolver>,
    pub receiver: crate::receiver::Receiver,
    pub state: Services,
    /// The one-time setup token the app made at start, before the owner existed.
    pub setup_token: Option<String>,
    pub clock: Arc<ManualClock>,
    pub client: awc::Client,
    pub db_path: std::path::PathBuf,
    /// The metrics listener's port, when the settings turned it on.
    pub metrics_port: Option<u16>,
    _dir: tempfile::TempDir,
}

/// An HTTP answer: status, headers and the body parsed as JSON (Null when it is not JSON).
pub struct Answer {
    pub status: u16,
    pub headers: actix_web::http::header::HeaderMap,
    pub json: Value,
    pub text: String,
}

/// An app whose egress exempts loopback, as an operator running the receiver beside it would
/// configure it, so deliveries can reach the local test receiver.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
    })
    .await
}

/// An app with the given settings changes (egress exemptions default to none).
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("data/forwarder.db");
    let mut settings = Settings::defaults_with_database(&db_path);
    configure(&mut settings);
    let clock = Arc::new(ManualClock::new());
    let resolver = Arc::new(TestResolver::default());
    let deps = Dependencies {
        clock: clock.clone() as Arc<dyn Clock>,
        resolver: resolver.clone() as Arc<dyn Resolve>,
    };
    let app = Application::build_with(settings, deps).await.unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    let metrics_port = app.metrics_port();
    let state = app.services().clone();
    // Made at start while no account exists; the owner below is created afterwards.
    let setup_token = app
        .setup_url()
        .and_then(|url| url.split_once("token=").map(|(_, t)| t.to_owned()));
    actix_web::rt::spawn(app.run_until_stopped());
    caputchin_forwarder::accounts::create_account(&state.store, OWNER, "correct horse battery", 1)
        .unwrap();
    TestApp {
        address,
        resolver,
        receiver: crate::receiver::Receiver::start(),
        state,
        clock,
        client: awc::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .disable_redirects()
            .finish(),
        db_path,
        metrics_port,
        setup_token,
        _dir: dir,
    }
}

/// Fast-to-solve site settings for tests.
pub fn site_input(name: &str) -> SiteInput {
    SiteInput {
        name: name.into(),
        webhook_url: "https://hooks.example.com/in".into(),
        enabled: true,
        challenge_count: Some(3),
        difficulty: Some(2),
        ..SiteInput::default()
    }
}

pub async fn answer<S>(mut res: awc::ClientResponse<S>) -> Answer
where
    S: futures_util::Stream<Item = Result<actix_web::web::Bytes, actix_web::error::PayloadError>>
        + Unpin,
{
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.body().limit(1 << 20).await.unwrap();
    Answer {
        status,
        headers,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates a site through the library (the CLI's code path) and makes the server see it.
    pub fn create_site(&self, input: &SiteInput) -> CreatedSite {
        let created =
            sites::create_site(&self.state.store, OWNER, input, self.clock.now_ms()).unwrap();
        self.state.sites.reload(&self.state.store).unwrap();
        created
    }

    pub async fn post_json(&self, path: &str, body: &Value, origin: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(self.url(path))
            .insert_header(("Content-Type", "application/json"));
        if let Some(origin) = origin {
            req = req.insert_header(("Origin", origin));
        }
        answer(req.send_body(body.to_string()).await.unwrap()).await
    }

    pub async fn post_raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
        self.post_with(path, content_type, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self.client.post(self.url(path));
        if !content_type.is_empty() {
            req = req.insert_header(("Content-Type", content_type));
        }
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        answer(req.send_body(body).await.unwrap()).await
    }

    /// Posts an urlencoded form to the site's forwarder URL, as a browser's plain form would.
    pub async fn post_form(&self, site_key: &str, fields: &[(&str, &str)]) -> Answer {
        self.post_form_with(site_key, fields, &[]).await
    }

    pub async fn post_form_with(
        &self,
        site_key: &str,
        fields: &[(&str, &str)],
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in fields {
            form.append_pair(name, value);
        }
        self.post_with(
            &format!("/f/{site_key}"),
            "application/x-www-form-urlencoded",
            form.finish().into_bytes(),
            headers,
        )
        .await
    }

    /// A site whose webhook is this app's local receiver.
    pub fn create_receiving_site(&self, name: &str) -> CreatedSite {
        let mut input = site_input(name);
        input.webhook_url = self.receiver.url();
        self.create_site(&input)
    }

    pub async fn challenge(&self, site_key: &str, origin: Option<&str>) -> Answer {
        let mut req = self
            .client
            .post(self.url(&format!("/v1/cap/{site_key}/challenge")));
        if let Some(origin) = origin {
            req = req.insert_header(("Origin", origin));
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn preflight(&self, path: &str, origin: &str) -> Answer {
        let req = self
            .client
            .request(actix_web::http::Method::OPTIONS, self.url(path))
            .insert_header(("Origin", origin))
            .insert_header(("Access-Control-Request-Method", "POST"))
            .insert_header(("Access-Control-Request-Headers", "content-type"));
        answer(req.send().await.unwrap()).await
    }

    pub async fn redeem(&self, site_key: &str, body: &Value) -> Answer {
        self.post_json(&format!("/v1/cap/{site_key}/redeem"), body, None)
            .await
    }

    /// Gets a challenge and solves it as the widget would: (challenge token, solutions).
    pub async fn solved_challenge(&self, site_key: &str) -> (String, Vec<u64>) {
        let issued = self.challenge(site_key, None).await;
        assert_eq!(issued.status, 200, "{}", issued.json);
        let token = issued.json["token"].as_str().unwrap().to_owned();
        let c = &issued.json["challenge"];
        let params = ChallengeParams {
            count: c["c"].as_u64().unwrap() as u16,
            size: c["s"].as_u64().unwrap() as u8,
            difficulty: c["d"].as_u64().unwrap() as u8,
        };
        let solutions = cap::solve(&token, params);
        (token, solutions)
    }

    /// Challenge → solve → redeem: a fresh verification token for the site.
    pub async fn solve_token(&self, site_key: &str) -> String {
        let (token, solutions) = self.solved_challenge(site_key).await;
        let redeemed = self
            .redeem(site_key, &json!({"token": token, "solutions": solutions}))
            .await;
        assert_eq!(redeemed.json["success"], true, "{}", redeemed.json);
        redeemed.json["token"].as_str().unwrap().to_owned()
    }

    pub async fn siteverify(&self, secret: &str, response: &str) -> Answer {
        self.post_json(
            "/v1/siteverify",
            &json!({"secret": secret, "response": response}),
            None,
        )
        .await
    }

    /// Reads one integer from the database through a separate connection, once the statistics
    /// records queued so far (committed behind the answers) are committed.
    pub fn db_count(&self, sql: &str) -> i64 {
        let store = self.state.store.clone();
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap()
                .block_on(store.flush())
        })
        .join()
        .unwrap()
        .unwrap();
        let conn = rusqlite::Connection::open(&self.db_path).unwrap();
        conn.query_row(sql, [], |r| r.get(0)).unwrap()
    }
}
