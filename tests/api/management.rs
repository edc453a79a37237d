//! The management API (SPEC §12): personal access tokens, their scopes and limits, and the wire
//! of Caputchin's Terraform provider (`reference/caputchin-management-api.md`).

use caputchin_forwarder::access_tokens::{self, Kind, Scope, TokenInput};
use caputchin_forwarder::clock::Clock as _;
use serde_json::{Value, json};

use crate::helpers::{Answer, OWNER, TestApp, answer, spawn_app, spawn_app_with};

/// The provider's user agent.
const PROVIDER_UA: &str = "terraform-provider-caputchin/1.1.0";

/// A client of one request, as the provider opens (its requests never wait on a pooled
/// connection the server may be closing); it never follows a redirect.
fn one_request_client() -> awc::Client {
    awc::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .disable_redirects()
        .finish()
}

impl TestApp {
    /// The owner's account id.
    pub fn owner_id(&self) -> i64 {
        caputchin_forwarder::accounts::find_account(&self.state.store, OWNER)
            .unwrap()
            .id
    }

    /// Mints a token for the owner through the library (the CLI's code path).
    pub fn token(&self, scope: Scope, site_id: Option<&str>) -> String {
        let input = TokenInput {
            name: "test".into(),
            scope,
            site_id: site_id.map(str::to_owned),
            expires_days: None,
            kind: Kind::Troop,
        };
        access_tokens::create_token(
            &self.state.store,
            self.owner_id(),
            &input,
            self.clock.now_ms(),
        )
        .unwrap()
        .value
    }

    /// A request as Caputchin's Terraform provider sends it (reference §1): the bearer token,
    /// its user agent, `Accept-Encoding: gzip`, no `Accept`, and `Content-Type` only with a body
    /// (compact JSON with an exact length).
    pub async fn provider(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&str>,
    ) -> Answer {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = one_request_client()
            .request(method, self.url(path))
            .insert_header(("Authorization", format!("Bearer {token}")))
            .insert_header(("User-Agent", PROVIDER_UA))
            .insert_header(("Accept-Encoding", "gzip"));
        match body {
            Some(body) => {
                req = req.insert_header(("Content-Type", "application/json"));
                answer(req.send_body(body.to_owned()).await.unwrap()).await
            }
            None => answer(req.send().await.unwrap()).await,
        }
    }

    /// A request with exactly these headers and body (no token unless a header gives one).
    pub async fn raw_request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = one_request_client().request(method, self.url(path));
        for (name, value) in headers {
            req = req.insert_header((*name, *value));
        }
        answer(req.send_body(body.to_vec()).await.unwrap()).await
    }
}

/// Asserts a management error: the status, the code, a message, and JSON.
#[track_caller]
pub fn assert_error(answer: &Answer, status: u16, code: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    assert_eq!(answer.json["error"], code, "{}", answer.text);
    assert!(answer.json["message"].is_string(), "{}", answer.text);
    let content_type = answer
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
}

#[actix_web::test]
async fn tokens_are_created_listed_and_revoked_with_caputchins_shapes() {
    let app = spawn_app().await;
    let admin = app.token(Scope::Write, None);

    let created = app
        .provider(
            "POST",
            "/v1/management/tokens",
            &admin,
            Some(r#"{"name":"terraform \u003cci\u003e","type":"account"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = &created.json["token"];
    assert_eq!(
        token["name"], "terraform <ci>",
        "the name is echoed as sent"
    );
    assert_eq!(token["type"], "account");
    let value = token["value"].as_str().unwrap().to_owned();
    assert!(access_tokens::looks_like_token(&value), "{value}");
    assert_eq!(token["prefix"], &value[..16]);
    assert!(token["created_at"].is_i64(), "{}", created.text);
    assert!(token["id"].as_str().unwrap().starts_with("tok_"));
    let id = token["id"].as_str().unwrap().to_owned();

    // The new token works; its use is recorded.
    let listed = app
        .provider("GET", "/v1/management/tokens", &value, None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    app.state.store.flush().await.unwrap();
    let listed = app
        .provider("GET", "/v1/management/tokens", &admin, None)
        .await;
    let rows = listed.json["tokens"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", listed.text);
    let row = rows.iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!(row["type"], "account");
    assert_eq!(row["prefix"], &value[..16]);
    assert!(row["last_used_at"].is_i64(), "{}", listed.text);
    assert!(
        row.get("value").is_none(),
        "a listed token never shows its value"
    );
    assert!(!listed.text.contains(&value[16..]));

    // Revoked: at once refused, gone from the list, and a second revoke is 404.
    let path = format!("/v1/management/tokens/{id}");
    let revoked = app.provider("DELETE", &path, &admin, None).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let refused = app
        .provider("GET", "/v1/management/tokens", &value, None)
        .await;
    assert_error(&refused, 401, "invalid-token");
    let listed = app
        .provider("GET", "/v1/management/tokens", &admin, None)
        .await;
    assert_eq!(listed.json["tokens"].as_array().unwrap().len(), 1);
    let again = app.provider("DELETE", &path, &admin, None).await;
    assert_error(&again, 404, "not-found");
}

#[actix_web::test]
async fn a_request_without_a_live_token_is_401_before_anything_else() {
    let app = spawn_app().await;
    let good = app.token(Scope::Write, None);
    let input = TokenInput {
        name: "short-lived".into(),
        expires_days: Some(1),
        ..TokenInput::default()
    };
    let expiring =
        access_tokens::create_token(&app.state.store, app.owner_id(), &input, app.clock.now_ms())
            .unwrap()
            .value;
    let unknown = format!("cpt_pat_{}", "ab".repeat(32));
    for path in [
        "/v1/management/tokens",
        "/api/v1/management/tokens",
        "/v1/management/troops/troop_x/pats",
        "/v1/management/sites/site_unknown",
    ] {
        let none = app.raw_request("GET", path, &[], b"").await;
        assert_error(&none, 401, "missing-token");
        assert_eq!(none.headers.get("www-authenticate").unwrap(), "Bearer");
        for header in [
            format!("Basic {good}"),
            "Bearer".to_owned(),
            "Bearer cpt_pat_short".to_owned(),
            format!("Bearer {unknown}"),
        ] {
            let refused = app
                .raw_request("GET", path, &[("Authorization", &header)], b"")
                .await;
            assert_error(&refused, 401, "invalid-token");
            assert_eq!(refused.headers.get("www-authenticate").unwrap(), "Bearer");
        }
    }
    let fine = app
        .provider("GET", "/v1/management/tokens", &expiring, None)
        .await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    app.clock.advance_ms(24 * 3_600_000);
    let expired = app
        .provider("GET", "/v1/management/tokens", &expiring, None)
        .await;
    assert_error(&expired, 401, "invalid-token");
    let still = app
        .provider("GET", "/v1/management/tokens", &good, None)
        .await;
    assert_eq!(still.status, 200);
}

#[actix_web::test]
async fn only_an_unrestricted_write_token_manages_tokens() {
    let app = spawn_app().await;
    let site = app.create_receiving_site("Contact");
    let reader = app.token(Scope::Read, None);
    let bound = app.token(Scope::Write, Some(&site.site_id));
    for token in [&reader, &bound] {
        let list = app
            .provider("GET", "/v1/management/tokens", token, None)
            .await;
        assert_error(&list, 403, "insufficient-scope");
        let create = app
            .provider(
                "POST",
                "/v1/management/tokens",
                token,
                Some(r#"{"name":"x"}"#),
            )
            .await;
        assert_error(&create, 403, "insufficient-scope");
    }
    let tokens = access_tokens::list_tokens(&app.state.store, app.owner_id()).unwrap();
    assert_eq!(tokens.len(), 2, "nothing was created");
}

#[actix_web::test]
async fn another_accounts_tokens_are_not_found() {
    let app = spawn_app().await;
    caputchin_forwarder::accounts::create_account(
        &app.state.store,
        "other@example.com",
        "another long password",
        1,
    )
    .unwrap();
    let other = caputchin_forwarder::accounts::find_account(&app.state.store, "other@example.com")
        .unwrap()
        .id;
    let theirs = access_tokens::create_token(
        &app.state.store,
        other,
        &TokenInput {
            name: "theirs".into(),
            ..TokenInput::default()
        },
        1,
    )
    .unwrap();
    let mine = app.token(Scope::Write, None);
    let listed = app
        .provider("GET", "/v1/management/tokens", &mine, None)
        .await;
    assert_eq!(listed.json["tokens"].as_array().unwrap().len(), 1);
    let path = format!("/v1/management/tokens/{}", theirs.info.id);
    let revoke = app.provider("DELETE", &path, &mine, None).await;
    assert_error(&revoke, 404, "not-found");
    let still = app
        .provider("GET", "/v1/management/tokens", &theirs.value, None)
        .await;
    assert_eq!(still.status, 200, "their token still works");
}

#[actix_web::test]
async fn each_token_has_its_own_request_budget() {
    let app = spawn_app_with(|s| s.api_rate_limit_per_min = 3).await;
    let busy = app.token(Scope::Write, None);
    let calm = app.token(Scope::Write, None);
    for _ in 0..3 {
        let ok = app
            .provider("GET", "/v1/management/tokens", &busy, None)
            .await;
        assert_eq!(ok.status, 200, "{}", ok.text);
    }
    let over = app
        .provider("GET", "/v1/management/tokens", &busy, None)
        .await;
    assert_error(&over, 429, "rate-limited");
    let retry: u64 = over
        .headers
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let other = app
        .provider("GET", "/v1/management/tokens", &calm, None)
        .await;
    assert_eq!(other.status, 200, "another token keeps its budget");
    app.clock.advance_ms(60_000);
    let later = app
        .provider("GET", "/v1/management/tokens", &busy, None)
        .await;
    assert_eq!(later.status, 200, "the budget comes back the next minute");
}

#[actix_web::test]
async fn bad_bodies_are_4xx_json_errors_and_create_nothing() {
    let app = spawn_app().await;
    let admin = app.token(Scope::Write, None);
    let auth = format!("Bearer {admin}");
    let json_type = ("Content-Type", "application/json");
    let big = format!(r#"{{"name":"{}"}}"#, "x".repeat(70 * 1024));
    type Case<'a> = (Vec<(&'a str, &'a str)>, Vec<u8>, u16, &'a str);
    let cases: Vec<Case<'_>> = vec![
        (
            vec![json_type],
            b"{\"name\":".to_vec(),
            400,
            "malformed-json",
        ),
        (
            vec![json_type],
            b"[\"name\"]".to_vec(),
            400,
            "malformed-json",
        ),
        (
            vec![json_type],
            b"{\"name\":\"a\"} {}".to_vec(),
            400,
            "malformed-json",
        ),
        (
            vec![json_type],
            b"{\"name\":NaN}".to_vec(),
            400,
            "malformed-json",
        ),
        (
            vec![json_type],
            b"{\"name\":5}".to_vec(),
            400,
            "invalid-field",
        ),
        (
            vec![json_type],
            b"{\"name\":\"a\",\"type\":\"team\"}".to_vec(),
            400,
            "invalid-field",
        ),
        (vec![json_type], b"{}".to_vec(), 400, "missing-field"),
        (vec![json_type], b"".to_vec(), 400, "missing-field"),
        (
            vec![json_type],
            b"{\"name\":\"\"}".to_vec(),
            422,
            "invalid-name",
        ),
        (
            vec![("Content-Type", "text/plain")],
            b"{\"name\":\"a\"}".to_vec(),
            415,
            "unsupported-content-type",
        ),
        (vec![json_type], big.into_bytes(), 413, "body-too-large"),
    ];
    for (headers, body, status, code) in cases {
        let mut all = headers.clone();
        all.push(("Authorization", &auth));
        let refused = app
            .raw_request("POST", "/v1/management/tokens", &all, &body)
            .await;
        assert_error(&refused, status, code);
    }
    let tokens = access_tokens::list_tokens(&app.state.store, app.owner_id()).unwrap();
    assert_eq!(tokens.len(), 1, "nothing was created");
}

#[actix_web::test]
async fn unsupported_routes_are_501_known_ones_405_and_nothing_redirects() {
    let app = spawn_app().await;
    let admin = app.token(Scope::Write, None);
    for (method, path) in [
        ("POST", "/v1/management/troops"),
        ("GET", "/v1/management/troops/troop_x/pats"),
        ("GET", "/v1/management/troops/troop_x/members"),
        ("GET", "/api/v1/management/white-label"),
    ] {
        let answer = app.provider(method, path, &admin, None).await;
        assert_error(&answer, 501, "not-supported");
    }
    let wrong = app
        .provider("PUT", "/v1/management/tokens", &admin, Some("{}"))
        .await;
    assert_error(&wrong, 405, "method-not-allowed");
    let slash = app
        .provider("GET", "/v1/management/tokens/", &admin, None)
        .await;
    assert!(
        slash.status < 300 || slash.status >= 400,
        "never a redirect"
    );
    assert!(slash.headers.get("location").is_none());
    let aliased = app
        .provider("GET", "/api/v1/management/tokens", &admin, None)
        .await;
    assert_eq!(aliased.status, 200, "{}", aliased.text);
    assert_eq!(aliased.json["tokens"].as_array().unwrap().len(), 1);
}

/// The binary's `token` commands (SPEC §12), through the same functions as the API.
mod cli {
    use super::*;
    use crate::cli::{cli, create_account, run, stderr, stdout};

    #[test]
    fn site_edit_switches_the_key_off_and_on_and_keeps_forwarding_as_it_was() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(create_account(d, "owner@example.com").status.success());
        let site = run(cli(d).args([
            "site",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "Contact",
            "--webhook",
            "https://hooks.example.com/in",
            "--json",
        ]));
        let site: Value = serde_json::from_str(stdout(&site).trim()).unwrap();
        let key = site["site_key"].as_str().unwrap();
        let listed = |d: &std::path::Path| -> Value {
            let out = run(cli(d).args(["site", "list", "--json"]));
            serde_json::from_str::<Value>(stdout(&out).trim()).unwrap()["sites"][0].clone()
        };
        assert_eq!(listed(d)["key_disabled"], false);
        let off = run(cli(d).args(["site", "edit", key, "--disable-key"]));
        assert!(off.status.success(), "{}", stderr(&off));
        let row = listed(d);
        assert_eq!(row["key_disabled"], true);
        assert_eq!(row["enabled"], true, "forwarding's switch is another one");
        let renamed = run(cli(d).args(["site", "edit", key, "--name", "Renamed"]));
        assert!(renamed.status.success());
        assert_eq!(
            listed(d)["key_disabled"],
            true,
            "an edit that does not name it keeps it"
        );
        let on = run(cli(d).args(["site", "edit", key, "--enable-key"]));
        assert!(on.status.success(), "{}", stderr(&on));
        assert_eq!(listed(d)["key_disabled"], false);
    }

    #[test]
    fn token_create_list_and_revoke_from_the_command_line() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(create_account(d, "owner@example.com").status.success());
        let site = run(cli(d).args([
            "site",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "Contact",
            "--webhook",
            "https://hooks.example.com/in",
            "--json",
        ]));
        let site: Value = serde_json::from_str(stdout(&site).trim()).unwrap();
        let key = site["site_key"].as_str().unwrap();

        let created = run(cli(d).args([
            "token",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "ci numbers",
            "--scope",
            "read",
            "--site",
            key,
            "--expires-days",
            "30",
            "--json",
        ]));
        assert!(created.status.success(), "{}", stderr(&created));
        let created: Value = serde_json::from_str(stdout(&created).trim()).unwrap();
        let token = created["token"].as_str().unwrap();
        assert!(access_tokens::looks_like_token(token), "{token}");
        assert_eq!(created["scope"], "read");
        assert_eq!(created["site_key"], key);
        assert_eq!(created["site_id"], site["site_id"]);
        assert_eq!(created["name"], "ci numbers");
        let expires = created["expires_at"].as_i64().unwrap();
        assert_eq!(
            expires - created["created_at"].as_i64().unwrap(),
            30 * 86_400_000
        );

        let text = run(cli(d).args(["token", "list", "--account", "owner@example.com"]));
        let text = stdout(&text);
        assert!(text.contains("ci numbers") && text.contains(key), "{text}");
        assert!(!text.contains(&token[16..]), "a list never shows a token");
        let listed =
            run(cli(d).args(["token", "list", "--account", "owner@example.com", "--json"]));
        let listed: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
        let rows = listed["tokens"].as_array().unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0]["last_used_at"], Value::Null);
        assert_eq!(rows[0]["prefix"], &token[..16]);
        let id = rows[0]["id"].as_str().unwrap();

        let other_site = run(cli(d).args([
            "token",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "x",
            "--site",
            "cpt_pub_000000000000000000000000",
        ]));
        assert!(!other_site.status.success(), "an unknown site is refused");
        let bad_scope = run(cli(d).args([
            "token",
            "create",
            "--account",
            "owner@example.com",
            "--name",
            "x",
            "--scope",
            "admin",
        ]));
        assert!(!bad_scope.status.success());

        let revoked = run(cli(d).args([
            "token",
            "revoke",
            id,
            "--account",
            "owner@example.com",
            "--json",
        ]));
        assert!(revoked.status.success(), "{}", stderr(&revoked));
        let revoked: Value = serde_json::from_str(stdout(&revoked).trim()).unwrap();
        assert_eq!(revoked, json!({"id": id, "revoked": true}));
        let again = run(cli(d).args(["token", "revoke", id, "--account", "owner@example.com"]));
        assert!(
            !again.status.success(),
            "a revoked token cannot be revoked again"
        );
        let listed =
            run(cli(d).args(["token", "list", "--account", "owner@example.com", "--json"]));
        let listed: Value = serde_json::from_str(stdout(&listed).trim()).unwrap();
        assert_eq!(listed["tokens"], json!([]));
    }
}

#[actix_web::test]
async fn the_dashboard_creates_a_token_shown_once_lists_its_last_use_and_revokes_it() {
    let app = spawn_app().await;
    let site = app.create_receiving_site("Numbers");
    let mut browser = crate::dashboard::logged_in(&app).await;
    let page = browser.get("/tokens").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("No tokens yet."));
    assert!(page.text.contains(&format!(
        r#"<option value="{}">Numbers</option>"#,
        site.site_id
    )));

    let fields = [
        ("name", "ci numbers"),
        ("scope", "read"),
        ("site", site.site_id.as_str()),
        ("expires_days", "30"),
    ];
    let created = browser.submit("/tokens", "/tokens", &fields).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let at = created
        .text
        .find(r#"id="token" class="mono" readonly value=""#)
        .unwrap()
        + 40;
    let value = created.text[at..at + 72].to_owned();
    assert!(access_tokens::looks_like_token(&value), "{value}");

    // The token works as made: read only, this one site.
    let listed = app
        .provider("GET", "/v1/management/sites", &value, None)
        .await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json["sites"].as_array().unwrap().len(), 1);
    let write = app
        .provider(
            "POST",
            "/v1/management/sites",
            &value,
            Some(r#"{"name":"x"}"#),
        )
        .await;
    assert_error(&write, 403, "insufficient-scope");
    app.state.store.flush().await.unwrap();

    let page = browser.get("/tokens").await;
    assert!(!page.text.contains(&value[16..]), "shown once only");
    assert!(page.text.contains(&value[..16]), "its prefix is listed");
    assert!(page.text.contains("ci numbers") && page.text.contains("Numbers"));
    let row_start = page.text.find("<tbody>").unwrap();
    let row = &page.text[row_start..];
    assert!(
        !row.contains(r#"data-label="Last used">never"#),
        "its use is listed: {row}"
    );

    // Bad input re-renders with a message and makes nothing.
    let refused = browser
        .submit("/tokens", "/tokens", &[("name", ""), ("scope", "write")])
        .await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains(r#"id="token-error""#));
    let bad_site = browser
        .submit(
            "/tokens",
            "/tokens",
            &[
                ("name", "x"),
                ("scope", "write"),
                ("site", "site_0000000000000000"),
            ],
        )
        .await;
    assert_eq!(bad_site.status, 422);
    assert_eq!(
        access_tokens::list_tokens(&app.state.store, app.owner_id())
            .unwrap()
            .len(),
        1
    );

    // Revoke: at once refused.
    let id = access_tokens::list_tokens(&app.state.store, app.owner_id()).unwrap()[0]
        .id
        .clone();
    let no_csrf = browser.post(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_ne!(
        no_csrf.status, 303,
        "a revoke without its CSRF token is refused"
    );
    let revoked = browser
        .submit("/tokens", &format!("/tokens/{id}/revoke"), &[])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    let gone = app
        .provider("GET", "/v1/management/sites", &value, None)
        .await;
    assert_error(&gone, 401, "invalid-token");
    let page = browser.get("/tokens?revoked=1").await;
    assert!(page.text.contains(r#"id="revoked-notice""#));
    assert!(page.text.contains("No tokens yet."));
}

/// Every path and method the management router serves (under `/v1/management`).
const SERVED: &[(&str, &str)] = &[
    ("/v1/management/openapi.json", "get"),
    ("/v1/management/me/account", "get"),
    ("/v1/management/troops", "get"),
    ("/v1/management/troops/{troop_id}", "get"),
    ("/v1/management/sites", "get"),
    ("/v1/management/sites", "post"),
    ("/v1/management/sites/{site_id}", "get"),
    ("/v1/management/sites/{site_id}", "patch"),
    ("/v1/management/sites/{site_id}", "delete"),
    ("/v1/management/sites/{site_id}/rotate-secret", "post"),
    ("/v1/management/sites/{site_id}/stats", "get"),
    ("/v1/management/sites/{site_id}/settings", "get"),
    ("/v1/management/sites/{site_id}/settings", "patch"),
    ("/v1/management/sites/{site_id}/delivery-stats", "get"),
    ("/v1/management/sites/{site_id}/deliveries", "get"),
    ("/v1/management/sites/{site_id}/cap-config", "get"),
    ("/v1/management/sites/{site_id}/cap-config", "patch"),
    ("/v1/management/sites/{site_id}/security-settings", "get"),
    ("/v1/management/sites/{site_id}/security-settings", "patch"),
    ("/v1/management/hosted-verification/{site_id}", "get"),
    ("/v1/management/hosted-verification/{site_id}", "put"),
    ("/v1/management/hosted-verification/{site_id}/test", "post"),
    ("/v1/management/tokens", "get"),
    ("/v1/management/tokens", "post"),
    ("/v1/management/tokens/{token_id}", "delete"),
];

#[actix_web::test]
async fn the_openapi_document_lists_every_served_path_and_validates() {
    let app = spawn_app().await;
    let doc = app
        .raw_request("GET", "/v1/management/openapi.json", &[], b"")
        .await;
    assert_eq!(doc.status, 200, "served without a token: {}", doc.text);
    assert!(
        doc.json["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc.json["openapi"]
    );
    let aliased = app
        .raw_request("GET", "/api/v1/management/openapi.json", &[], b"")
        .await;
    assert_eq!(aliased.json, doc.json);

    let mut listed: Vec<(String, String)> = Vec::new();
    for (path, item) in doc.json["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            listed.push((path.clone(), method.clone()));
        }
    }
    listed.sort();
    let mut served: Vec<(String, String)> = SERVED
        .iter()
        .map(|(p, m)| ((*p).to_owned(), (*m).to_owned()))
        .collect();
    served.sort();
    assert_eq!(listed, served);

    // Each listed route is one the router serves: with a token it is never 501 or 405.
    let token = app.token(Scope::Write, None);
    for (path, method) in SERVED {
        let concrete = path
            .replace("{site_id}", "site_0000000000000000")
            .replace("{troop_id}", "troop_0000000000000000")
            .replace("{token_id}", "tok_0000000000000000");
        let body = (!matches!(*method, "get" | "delete")).then_some("{}");
        let answer = app
            .provider(&method.to_uppercase(), &concrete, &token, body)
            .await;
        assert!(
            ![405, 501].contains(&answer.status) && answer.status < 500,
            "{method} {concrete}: {}",
            answer.status
        );
    }

    // openapi-spec-validator, from the virtual environment tests/deps makes.
    let validator = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/openapi/.venv/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: run tests/deps",
        validator.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, &doc.text).unwrap();
    let out = std::process::Command::new(&validator)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
