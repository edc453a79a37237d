//! Caputchin's own widget (SPEC §13, CAPUTCHIN-WIDGET-PROTOCOL): every request it sends —
//! `GET /v1/widget/bootstrap`, `POST /v1/verify/start`, `POST /v1/verify/pass` and their
//! preflights — and every refusal, over HTTP against the real server.

use caputchin_forwarder::captcha::cap::{self, ChallengeParams};
use caputchin_forwarder::clock::Clock as _;
use caputchin_forwarder::sites::{self, CreatedSite, SiteInput};
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, answer, site_input, spawn_app};

/// A well-formed site key that no site has.
const UNKNOWN_KEY: &str = "cpt_pub_0123456789abcdef01234567";
const PAGE: &str = "https://www.example.com";
const JSON_ACCEPT: [(&str, &str); 1] = [("Accept", "application/json")];

fn acao(answer: &Answer) -> Option<String> {
    answer
        .headers
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned())
}

async fn bootstrap(app: &TestApp, query: &str, origin: Option<&str>) -> Answer {
    let mut req = app
        .client
        .get(app.url(&format!("/v1/widget/bootstrap{query}")));
    if let Some(origin) = origin {
        req = req.insert_header(("Origin", origin));
    }
    answer(req.send().await.unwrap()).await
}

/// `POST /v1/verify/start` with the body the widget sends.
async fn start(app: &TestApp, sitekey: &str, origin: Option<&str>) -> Answer {
    app.post_json(
        "/v1/verify/start",
        &json!({"platform": {"sitekey": sitekey, "gameId": null}}),
        origin,
    )
    .await
}

async fn pass(app: &TestApp, body: &Value, origin: Option<&str>) -> Answer {
    app.post_json("/v1/verify/pass", body, origin).await
}

/// A started and solved challenge: what the widget posts to `pass`.
struct Solved {
    token: String,
    session_id: String,
    solutions: Vec<u64>,
}

impl Solved {
    fn body(&self) -> Value {
        json!({"token": self.token, "solutions": self.solutions,
               "platform": {"sessionId": self.session_id}})
    }
}

fn params_of(started: &Answer) -> ChallengeParams {
    let c = &started.json["challenge"];
    ChallengeParams {
        count: c["c"].as_u64().unwrap() as u16,
        size: c["s"].as_u64().unwrap() as u8,
        difficulty: c["d"].as_u64().unwrap() as u8,
    }
}

/// Starts a verification and solves it as the widget's workers do.
async fn solved(app: &TestApp, sitekey: &str, origin: Option<&str>) -> Solved {
    let started = start(app, sitekey, origin).await;
    assert_eq!(started.status, 200, "{}", started.json);
    let token = started.json["token"].as_str().unwrap().to_owned();
    let solutions = cap::solve(&token, params_of(&started));
    Solved {
        session_id: started.json["platform"]["sessionId"]
            .as_str()
            .unwrap()
            .to_owned(),
        token,
        solutions,
    }
}

/// Solutions that are really wrong for this challenge (at a low difficulty a changed nonce may
/// still be valid).
fn wrong_solutions(solved: &Solved, params: ChallengeParams) -> Vec<u64> {
    let mut wrong = solved.solutions.clone();
    wrong[0] += 1;
    while cap::verify_solutions(&solved.token, params, &wrong) {
        wrong[0] += 1;
    }
    wrong
}

/// The account that owns every test site.
fn owner_id(app: &TestApp, site_key: &str) -> i64 {
    app.state.sites.get(site_key).unwrap().account_id
}

/// Switches a running site's forwarding off, as the dashboard's edit form does.
fn disable(app: &TestApp, created: &CreatedSite, mut input: SiteInput) {
    input.enabled = false;
    let account_id = owner_id(app, created.site_key.as_str());
    assert!(
        sites::update_site(
            &app.state.store,
            account_id,
            &created.site_id,
            &input,
            app.clock.now_ms()
        )
        .unwrap()
    );
    app.state.sites.reload(&app.state.store).unwrap();
}

mod bootstrap {
    use super::*;

    #[actix_web::test]
    async fn a_known_site_gets_no_widget_config_and_no_game_with_cors() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();

        let from_page = bootstrap(
            &app,
            &format!("?sitekey={key}&locale=en-US&skin=light"),
            Some(PAGE),
        )
        .await;
        let bare = bootstrap(&app, &format!("?sitekey={key}"), None).await;

        assert_eq!(from_page.status, 200);
        assert_eq!(from_page.json, json!({"widget": null, "game": null}));
        assert_eq!(acao(&from_page).as_deref(), Some("*"));
        assert_eq!(from_page.headers.get("cache-control").unwrap(), "no-store");
        assert_eq!(bare.status, 200);
        assert_eq!(bare.json, json!({"widget": null, "game": null}));
        assert_eq!(acao(&bare), None);
    }

    #[actix_web::test]
    async fn an_unknown_missing_or_disabled_site_key_is_the_gate_error_the_widget_reports() {
        let app = spawn_app().await;
        let input = site_input("Off");
        let off = app.create_site(&input);
        disable(&app, &off, input);

        let unknown = bootstrap(&app, &format!("?sitekey={UNKNOWN_KEY}"), Some(PAGE)).await;
        let malformed = bootstrap(&app, "?sitekey=nope&skin=dark", Some(PAGE)).await;
        let missing = bootstrap(&app, "", Some(PAGE)).await;
        let disabled = bootstrap(
            &app,
            &format!("?sitekey={}", off.site_key.as_str()),
            Some(PAGE),
        )
        .await;

        for (answer, code) in [
            (&unknown, "unknown-site"),
            (&malformed, "unknown-site"),
            (&missing, "unknown-site"),
            (&disabled, "forwarding-disabled"),
        ] {
            // CAPUTCHIN-WIDGET-PROTOCOL §4: a 409 with this code fires `gate-unavailable`, with
            // `message` as its detail; it must be readable cross-origin.
            assert_eq!(answer.status, 409, "{code}: {}", answer.text);
            assert_eq!(answer.json["error"], "gate-misconfigured", "{code}");
            assert_eq!(answer.json["code"], code);
            assert!(answer.json["message"].as_str().unwrap().len() > 5);
            assert_eq!(acao(answer).as_deref(), Some(PAGE), "{code}");
        }
        assert_eq!(unknown.json["message"], "Unknown site key");
    }

    #[actix_web::test]
    async fn a_site_that_restricts_origins_answers_only_its_own() {
        let app = spawn_app().await;
        let mut input = site_input("Restricted");
        input.allowed_origins = vec![PAGE.into()];
        let key = app.create_site(&input).site_key.as_str().to_owned();

        let allowed = bootstrap(&app, &format!("?sitekey={key}"), Some(PAGE)).await;
        let other = bootstrap(&app, &format!("?sitekey={key}"), Some("https://evil.test")).await;

        assert_eq!(allowed.status, 200);
        assert_eq!(acao(&allowed).as_deref(), Some(PAGE));
        assert_eq!(allowed.headers.get("vary").unwrap(), "Origin");
        assert_eq!(other.status, 403);
        assert_eq!(other.json["error"], "origin-not-allowed");
        assert_eq!(acao(&other), None);
    }
}

mod start {
    use super::*;

    #[actix_web::test]
    async fn a_start_is_a_format_1_challenge_of_the_sites_shape_with_a_session_and_writes_nothing()
    {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));

        let started = start(&app, site.site_key.as_str(), Some(PAGE)).await;

        assert_eq!(started.status, 200, "{}", started.text);
        let object = started.json.as_object().unwrap();
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        // No `format` (format 2) and no `instrumentation` (CAPUTCHIN-WIDGET-PROTOCOL §5, §14).
        assert_eq!(keys, ["challenge", "expires", "platform", "token"]);
        assert_eq!(started.json["challenge"], json!({"c": 3, "s": 32, "d": 2}));
        let token = started.json["token"].as_str().unwrap();
        assert!(token.is_ascii() && token.len() > 60, "{token}");
        assert_eq!(
            started.json["expires"].as_i64().unwrap(),
            app.clock.now_ms() + 10 * 60 * 1000
        );
        let session = started.json["platform"]["sessionId"].as_str().unwrap();
        assert_eq!(session.len(), 32);
        assert_eq!(
            started.json["platform"].as_object().unwrap().len(),
            1,
            "only sessionId"
        );
        assert_eq!(acao(&started).as_deref(), Some("*"));
        assert_eq!(started.headers.get("cache-control").unwrap(), "no-store");
        // Issuing wrote nothing but the count of issued challenges (SPEC §2).
        assert_eq!(app.db_count("SELECT COUNT(*) FROM spent_challenges"), 0);
        assert_eq!(
            app.db_count("SELECT issued * 1000 + solved FROM challenge_hourly"),
            1000
        );
    }

    #[actix_web::test]
    async fn each_start_is_a_new_challenge_and_session() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));

        let a = start(&app, site.site_key.as_str(), None).await;
        let b = start(&app, site.site_key.as_str(), None).await;

        assert_ne!(a.json["token"], b.json["token"]);
        assert_ne!(
            a.json["platform"]["sessionId"],
            b.json["platform"]["sessionId"]
        );
    }

    #[actix_web::test]
    async fn an_unknown_or_disabled_site_is_refused_in_the_body() {
        let app = spawn_app().await;
        let input = site_input("Off");
        let off = app.create_site(&input);
        disable(&app, &off, input);

        let unknown = start(&app, UNKNOWN_KEY, Some(PAGE)).await;
        let disabled = start(&app, off.site_key.as_str(), Some(PAGE)).await;

        assert_eq!(unknown.status, 404);
        assert_eq!(unknown.json["error"], "unknown-site");
        assert_eq!(unknown.json["message"], "Unknown site key");
        assert!(unknown.json.get("token").is_none());
        assert_eq!(
            acao(&unknown).as_deref(),
            Some(PAGE),
            "readable by the widget"
        );
        assert_eq!(disabled.status, 403);
        assert_eq!(disabled.json["error"], "forwarding-disabled");
        assert_eq!(acao(&disabled).as_deref(), Some(PAGE));
    }

    #[actix_web::test]
    async fn bodies_that_are_not_the_widgets_are_bad_requests() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();

        for body in [
            "not json".to_owned(),
            String::new(),
            json!({"sitekey": key}).to_string(),
            json!({"platform": {"sitekey": 5}}).to_string(),
        ] {
            let answer = app
                .post_with(
                    "/v1/verify/start",
                    "application/json",
                    body.clone().into_bytes(),
                    &[("Origin", PAGE)],
                )
                .await;
            assert_eq!(answer.status, 400, "{body}");
            assert_eq!(answer.json["error"], "bad-request", "{body}");
            assert_eq!(acao(&answer).as_deref(), Some(PAGE));
        }
        let huge = app
            .post_raw(
                "/v1/verify/start",
                "application/json",
                vec![b' '; 64 * 1024],
            )
            .await;
        assert_eq!(huge.status, 413);
        assert_eq!(huge.json["error"], "payload-too-large");
    }

    #[actix_web::test]
    async fn over_the_challenge_budget_a_start_is_rate_limited() {
        let app = crate::helpers::spawn_app_with(|s| s.challenge_rate_limit_per_min = 2).await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();

        let first = start(&app, key, None).await;
        // Cap's challenge endpoint and `start` share the budget.
        let cap_challenge = app.challenge(key, None).await;
        let third = start(&app, key, None).await;

        assert_eq!(first.status, 200);
        assert_eq!(cap_challenge.status, 200);
        assert_eq!(third.status, 429);
        assert_eq!(third.json["error"], "rate-limited");
        assert!(third.headers.get("retry-after").is_some());
    }
}

mod pass {
    use super::*;

    #[actix_web::test]
    async fn a_solved_challenge_passes_once_to_a_wrapped_token_the_form_endpoint_accepts_once() {
        let app = spawn_app().await;
        let site = app.create_receiving_site("Contact");
        let key = site.site_key.as_str();
        let solved = solved(&app, key, Some(PAGE)).await;

        let passed = pass(&app, &solved.body(), Some(PAGE)).await;
        let again = pass(&app, &solved.body(), Some(PAGE)).await;

        assert_eq!(passed.status, 200, "{}", passed.text);
        assert_eq!(passed.json["success"], true);
        let wrapped = passed.json["platform"]["wrappedToken"].as_str().unwrap();
        assert_eq!(passed.json["token"], wrapped, "Cap's redeem field too");
        assert!(wrapped.len() <= 2048 && wrapped.contains('.'));
        assert_eq!(
            passed.json["expires"].as_i64().unwrap(),
            app.clock.now_ms() + 10 * 60 * 1000
        );
        assert_eq!(acao(&passed).as_deref(), Some("*"));
        // The challenge was spent by the first pass.
        assert_eq!(again.status, 403);
        assert_eq!(
            again.json,
            json!({"success": false, "error": "challenge-invalid",
                   "message": "Challenge invalid or expired"})
        );

        let posted = app
            .post_form_with(
                key,
                &[("message", "hello"), ("caputchin-token", wrapped)],
                &JSON_ACCEPT,
            )
            .await;
        let replayed = app
            .post_form_with(
                key,
                &[("message", "hello"), ("caputchin-token", wrapped)],
                &JSON_ACCEPT,
            )
            .await;

        assert_eq!(posted.status, 200, "{}", posted.text);
        assert_eq!(posted.json["ok"], true);
        let received = app.receiver.requests();
        assert_eq!(received.len(), 1, "delivered exactly once");
        let envelope = received[0].json();
        assert_eq!(envelope["form"], json!({"message": "hello"}));
        assert_eq!(envelope["caputchin"]["site_key"], key);
        assert_eq!(
            envelope["caputchin"]["session_id"],
            posted.json["session_id"]
        );
        for field in ["game_id", "score", "duration_ms"] {
            assert_eq!(envelope["caputchin"][field], Value::Null, "{field}");
        }
        assert_eq!(replayed.status, 403);
        assert_eq!(replayed.json["error"], "timeout-or-duplicate");
    }

    #[actix_web::test]
    async fn a_wrapped_token_verifies_once_at_siteverify_and_then_not_at_the_form() {
        let app = spawn_app().await;
        let site = app.create_receiving_site("Contact");
        let key = site.site_key.as_str();
        let solved = solved(&app, key, None).await;
        let passed = pass(&app, &solved.body(), None).await;
        let wrapped = passed.json["platform"]["wrappedToken"].as_str().unwrap();

        let verified = app.siteverify(&site.secret, wrapped).await;
        let again = app.siteverify(&site.secret, wrapped).await;
        let posted = app
            .post_form_with(key, &[("caputchin-token", wrapped)], &JSON_ACCEPT)
            .await;

        assert_eq!(
            verified.json,
            json!({"success": true, "error-codes": [],
                   "platform": {"game_id": null, "score": null, "duration_ms": null}})
        );
        assert_eq!(again.json["error-codes"], json!(["timeout-or-duplicate"]));
        assert_eq!(posted.json["error"], "timeout-or-duplicate");
        assert!(app.receiver.requests().is_empty());
    }

    #[actix_web::test]
    async fn a_wrong_solution_is_refused_and_spends_the_challenge() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let solved = solved(&app, site.site_key.as_str(), None).await;
        let wrong = wrong_solutions(&solved, ChallengeParams::new(3, 2).unwrap());
        let mut short = solved.solutions.clone();
        short.pop();

        let bad = pass(
            &app,
            &json!({"token": solved.token, "solutions": wrong,
                    "platform": {"sessionId": solved.session_id}}),
            None,
        )
        .await;
        let good = pass(&app, &solved.body(), None).await;

        assert_eq!(bad.status, 403);
        assert_eq!(
            bad.json,
            json!({"success": false, "error": "invalid-solution", "message": "Invalid solution"})
        );
        assert_eq!(good.status, 403);
        assert_eq!(good.json["error"], "challenge-invalid");

        let other = self::solved(&app, site.site_key.as_str(), None).await;
        let too_few = pass(
            &app,
            &json!({"token": other.token, "solutions": &other.solutions[..2],
                    "platform": {"sessionId": other.session_id}}),
            None,
        )
        .await;
        assert_eq!(too_few.json["error"], "invalid-solution");
    }

    #[actix_web::test]
    async fn an_expired_challenge_is_refused() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let solved = solved(&app, site.site_key.as_str(), None).await;

        app.clock.advance_ms(10 * 60 * 1000);
        let answer = pass(&app, &solved.body(), None).await;

        assert_eq!(answer.status, 403);
        assert_eq!(answer.json["success"], false);
        assert_eq!(answer.json["error"], "challenge-invalid");
    }

    #[actix_web::test]
    async fn a_wrong_or_missing_session_is_refused_and_does_not_spend_the_challenge() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();
        let solved = solved(&app, key, None).await;
        let other = self::solved(&app, key, None).await;

        let with = |platform: Value| json!({"token": solved.token, "solutions": solved.solutions, "platform": platform});
        let refused = [
            pass(&app, &with(json!({"sessionId": other.session_id})), None).await,
            pass(&app, &with(json!({})), None).await,
            pass(
                &app,
                &json!({"token": solved.token, "solutions": solved.solutions}),
                None,
            )
            .await,
            pass(&app, &with(json!({"sessionId": "0".repeat(32)})), None).await,
        ];
        let right = pass(&app, &solved.body(), None).await;

        for answer in &refused {
            assert_eq!(answer.status, 403, "{}", answer.text);
            assert_eq!(answer.json["success"], false);
            assert_eq!(answer.json["error"], "invalid-session");
        }
        assert_eq!(right.status, 200, "{}", right.text);
        assert_eq!(right.json["success"], true);
    }

    #[actix_web::test]
    async fn cap_challenge_tokens_and_altered_tokens_are_not_challenges_of_the_widget() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let key = site.site_key.as_str();
        let solved = solved(&app, key, None).await;
        let (cap_token, cap_solutions) = app.solved_challenge(key).await;
        let mut altered = solved.token.clone().into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();

        let cap = pass(
            &app,
            &json!({"token": cap_token, "solutions": cap_solutions,
                    "platform": {"sessionId": solved.session_id}}),
            Some(PAGE),
        )
        .await;
        let changed = pass(
            &app,
            &json!({"token": altered, "solutions": solved.solutions,
                    "platform": {"sessionId": solved.session_id}}),
            Some(PAGE),
        )
        .await;
        // Nor is a widget's challenge one of Cap's.
        let at_cap = app
            .redeem(
                key,
                &json!({"token": solved.token, "solutions": solved.solutions}),
            )
            .await;

        for answer in [&cap, &changed] {
            assert_eq!(answer.status, 403);
            assert_eq!(answer.json["error"], "challenge-invalid");
            assert_eq!(acao(answer).as_deref(), Some(PAGE));
        }
        assert_eq!(at_cap.json["code"], "challenge-invalid");
        assert_eq!(pass(&app, &solved.body(), None).await.json["success"], true);
    }

    #[actix_web::test]
    async fn malformed_bodies_are_bad_requests_and_do_not_spend_the_challenge() {
        let app = spawn_app().await;
        let site = app.create_site(&site_input("Contact"));
        let solved = solved(&app, site.site_key.as_str(), None).await;

        for body in [
            "not json".to_owned(),
            json!({"token": solved.token, "solutions": ["1"],
                   "platform": {"sessionId": solved.session_id}})
            .to_string(),
            json!({"token": solved.token, "platform": {"sessionId": solved.session_id}})
                .to_string(),
            json!({"token": solved.token, "solutions": solved.solutions,
                   "platform": {"sessionId": 7}})
            .to_string(),
        ] {
            let answer = app
                .post_with(
                    "/v1/verify/pass",
                    "application/json",
                    body.clone().into_bytes(),
                    &[("Origin", PAGE)],
                )
                .await;
            assert_eq!(answer.status, 400, "{body}");
            assert_eq!(
                answer.json,
                json!({"success": false, "error": "bad-request", "message": "Invalid body"}),
                "{body}"
            );
            assert_eq!(acao(&answer).as_deref(), Some(PAGE));
        }
        assert_eq!(pass(&app, &solved.body(), None).await.json["success"], true);
    }

    #[actix_web::test]
    async fn a_site_disabled_or_deleted_after_start_is_refused_at_pass() {
        let app = spawn_app().await;
        let input = site_input("Later off");
        let site = app.create_site(&input);
        let gone = app.create_site(&site_input("Later gone"));
        let solved_off = solved(&app, site.site_key.as_str(), None).await;
        let solved_gone = solved(&app, gone.site_key.as_str(), None).await;
        disable(&app, &site, input);
        let account_id = owner_id(&app, gone.site_key.as_str());
        assert!(sites::delete_site(&app.state.store, account_id, &gone.site_id).unwrap());
        app.state.sites.reload(&app.state.store).unwrap();

        let off = pass(&app, &solved_off.body(), None).await;
        let deleted = pass(&app, &solved_gone.body(), None).await;

        assert_eq!(off.status, 403);
        assert_eq!(off.json["error"], "forwarding-disabled");
        assert_eq!(deleted.status, 404);
        assert_eq!(deleted.json["error"], "unknown-site");
    }
}

mod cors {
    use super::*;

    async fn restricted(app: &TestApp) -> String {
        let mut input = site_input("Restricted");
        input.allowed_origins = vec![PAGE.into()];
        app.create_site(&input).site_key.as_str().to_owned()
    }

    #[actix_web::test]
    async fn preflights_of_start_and_pass_are_allowed_for_any_origin() {
        let app = spawn_app().await;
        restricted(&app).await;

        for path in ["/v1/verify/start", "/v1/verify/pass"] {
            for origin in [PAGE, "https://evil.test"] {
                let pre = app.preflight(path, origin).await;
                assert_eq!(pre.status, 204, "{path} {origin}");
                assert_eq!(acao(&pre).as_deref(), Some(origin), "{path}");
                let headers = pre.headers.get("access-control-allow-headers").unwrap();
                assert!(
                    headers
                        .to_str()
                        .unwrap()
                        .to_ascii_lowercase()
                        .contains("content-type")
                );
                assert_eq!(pre.headers.get("vary").unwrap(), "Origin");
            }
        }
    }

    #[actix_web::test]
    async fn an_allowed_origin_is_echoed_on_start_and_pass() {
        let app = spawn_app().await;
        let key = restricted(&app).await;
        let started = start(&app, &key, Some(PAGE)).await;
        let solved = solved(&app, &key, Some(PAGE)).await;

        let passed = pass(&app, &solved.body(), Some(PAGE)).await;

        assert_eq!(started.status, 200);
        assert_eq!(acao(&started).as_deref(), Some(PAGE));
        assert_eq!(passed.status, 200);
        assert_eq!(acao(&passed).as_deref(), Some(PAGE));
    }

    #[actix_web::test]
    async fn another_origin_is_refused_on_start_and_on_pass_without_cors_or_spending() {
        let app = spawn_app().await;
        let key = restricted(&app).await;
        let solved = solved(&app, &key, Some(PAGE)).await;

        let started = start(&app, &key, Some("https://evil.test")).await;
        let passed = pass(&app, &solved.body(), Some("https://evil.test")).await;
        let from_page = pass(&app, &solved.body(), Some(PAGE)).await;

        assert_eq!(started.status, 403);
        assert_eq!(started.json["error"], "origin-not-allowed");
        assert_eq!(acao(&started), None);
        // `pass` names no site: the one its challenge token carries decides.
        assert_eq!(passed.status, 403);
        assert_eq!(passed.json["success"], false);
        assert_eq!(passed.json["error"], "origin-not-allowed");
        assert_eq!(acao(&passed), None);
        assert_eq!(from_page.json["success"], true, "the refusal spent nothing");
    }
}

#[actix_web::test]
async fn metrics_and_statistics_count_every_answer_and_refusal() {
    use caputchin_forwarder::metrics::WIDGET_ENDPOINTS;

    let app = crate::metrics::spawn_app_with_metrics(60).await;
    let site = app.create_site(&site_input("Contact"));
    let key = site.site_key.as_str();

    assert_eq!(
        bootstrap(&app, &format!("?sitekey={key}"), None)
            .await
            .status,
        200
    );
    assert_eq!(
        bootstrap(&app, &format!("?sitekey={UNKNOWN_KEY}"), None)
            .await
            .status,
        409
    );
    assert_eq!(start(&app, UNKNOWN_KEY, None).await.status, 404);
    let bad_start = app
        .post_raw("/v1/verify/start", "application/json", b"{".to_vec())
        .await;
    assert_eq!(bad_start.status, 400);
    let passed = solved(&app, key, None).await;
    assert_eq!(pass(&app, &passed.body(), None).await.status, 200);
    assert_eq!(pass(&app, &passed.body(), None).await.status, 403);
    let wrong = solved(&app, key, None).await;
    let wrong_body = json!({"token": wrong.token,
        "solutions": wrong_solutions(&wrong, ChallengeParams::new(3, 2).unwrap()),
        "platform": {"sessionId": wrong.session_id}});
    assert_eq!(pass(&app, &wrong_body, None).await.status, 403);
    let sessionless = solved(&app, key, None).await;
    let no_session = json!({"token": sessionless.token, "solutions": sessionless.solutions,
        "platform": {}});
    assert_eq!(pass(&app, &no_session, None).await.status, 403);
    let bad_pass = app
        .post_raw("/v1/verify/pass", "application/json", b"[]".to_vec())
        .await;
    assert_eq!(bad_pass.status, 400);

    let all = crate::metrics::samples(&crate::metrics::scrape(&app).await);
    let expected = [
        (("bootstrap", "success"), 1.0),
        (("bootstrap", "unknown-site"), 1.0),
        (("start", "success"), 3.0),
        (("start", "unknown-site"), 1.0),
        (("start", "bad-request"), 1.0),
        (("pass", "success"), 1.0),
        (("pass", "challenge-invalid"), 1.0),
        (("pass", "invalid-solution"), 1.0),
        (("pass", "invalid-session"), 1.0),
        (("pass", "bad-request"), 1.0),
    ];
    // Every series exists from the start; those not touched above are 0.
    for &(endpoint, results) in WIDGET_ENDPOINTS {
        for &result in results {
            let want = expected
                .iter()
                .find(|((e, r), _)| *e == endpoint && *r == result)
                .map_or(0.0, |(_, n)| *n);
            assert_eq!(
                crate::metrics::value(
                    &all,
                    "caputchin_widget_requests_total",
                    &[("endpoint", endpoint), ("result", result)]
                ),
                want,
                "{endpoint} {result}"
            );
        }
    }
    // The Cap endpoints' own series count only Cap's requests.
    assert_eq!(
        crate::metrics::value(&all, "caputchin_cap_challenges_total", &[]),
        0.0
    );
    // The site's statistics count the widget's challenges with the built-in verifier's: three
    // issued, one solved; the refused passes solved none.
    app.db_count("SELECT 1"); // commits the queued counts
    let stats = crate::metrics::site_stats(&app, &site.site_id).await;
    assert_eq!(stats.challenges_issued, 3);
    assert_eq!(stats.challenges_solved, 1);
}
