//! The management API's sites, hosted verification and settings, replayed as Caputchin's
//! Terraform provider 1.1.0 and the legacy MCP 1.x scripts send them (reference §1, §3–§6), and
//! decoded with the provider's rules (reference §2): integer literals, explicit nulls,
//! byte-identical echoes, 404 handling. Scopes and isolation (§9.8) too.

use caputchin_forwarder::access_tokens::Scope;
use serde_json::{Value, json};

use crate::helpers::{Answer, TestApp, spawn_app};
use crate::management::assert_error;

/// The seven site fields the provider reads, each with the type it decodes into: a list row
/// missing one is skipped by the provider, so every row must carry all of them.
#[track_caller]
fn assert_site_shape(site: &Value) {
    for key in ["id", "key", "name", "troop_id", "tier"] {
        assert!(
            site[key].as_str().is_some_and(|s| !s.is_empty()),
            "{key}: {site}"
        );
    }
    assert!(site["disabled"].is_boolean(), "{site}");
    assert!(site["created_at"].is_i64(), "an integer literal: {site}");
    assert!(
        site.get("secret").is_none(),
        "a site never carries its secret"
    );
    assert!(
        site.get("webhook_url").is_none(),
        "a site row never shows its webhook"
    );
}

/// Asserts the provider could decode the answer: a JSON object, and (raw text) no number
/// written as a float where the provider wants an int64.
#[track_caller]
fn assert_decodes(answer: &Answer) {
    assert!(answer.json.is_object(), "{}", answer.text);
    assert!(
        !answer.text.contains(".0,") && !answer.text.contains("e+"),
        "{}",
        answer.text
    );
}

/// The legacy MCP 1.x request shape: `content-type` and `accept` JSON on every request, an
/// empty body (`content-length: 0`) when there is nothing to send.
async fn mcp(app: &TestApp, method: &str, path: &str, token: &str, body: &str) -> Answer {
    app.raw_request(
        method,
        path,
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("content-type", "application/json"),
            ("accept", "application/json"),
        ],
        body.as_bytes(),
    )
    .await
}

/// A visitor's form post asking for JSON, on a connection of its own (this long test leaves the
/// shared client's pooled connections idle long enough for the server to close them).
async fn post_form(app: &TestApp, key: &str, fields: &[(&str, &str)]) -> Answer {
    let res = awc::Client::default()
        .post(app.url(&format!("/f/{key}")))
        .insert_header(("Accept", "application/json"))
        .send_form(&fields)
        .await
        .unwrap();
    crate::helpers::answer(res).await
}

/// Challenge → solve → redeem, each on a connection of its own: a fresh verification token.
async fn solve_token(app: &TestApp, key: &str) -> String {
    use caputchin_forwarder::captcha::cap::{self, ChallengeParams};
    let issued = awc::Client::default()
        .post(app.url(&format!("/v1/cap/{key}/challenge")))
        .send()
        .await
        .unwrap();
    let issued = crate::helpers::answer(issued).await;
    let token = issued.json["token"].as_str().unwrap().to_owned();
    let c = &issued.json["challenge"];
    let params = ChallengeParams {
        count: c["c"].as_u64().unwrap() as u16,
        size: c["s"].as_u64().unwrap() as u8,
        difficulty: c["d"].as_u64().unwrap() as u8,
    };
    let solutions = cap::solve(&token, params);
    let redeemed = awc::Client::default()
        .post(app.url(&format!("/v1/cap/{key}/redeem")))
        .send_json(&json!({"token": token, "solutions": solutions}))
        .await
        .unwrap();
    let redeemed = crate::helpers::answer(redeemed).await;
    redeemed.json["token"].as_str().unwrap().to_owned()
}

/// A backend's siteverify call with this secret and a token that is none.
async fn siteverify(app: &TestApp, secret: &str) -> Answer {
    let res = awc::Client::default()
        .post(app.url("/v1/siteverify"))
        .send_json(&json!({"secret": secret, "response": "x.y"}))
        .await
        .unwrap();
    crate::helpers::answer(res).await
}

#[actix_web::test]
async fn a_terraform_run_creates_reads_changes_rotates_configures_lists_and_destroys_a_site() {
    let app = spawn_app().await;
    let token = app.token(Scope::Write, None);

    // data "caputchin_troops": the troop id a site needs.
    let troops = app
        .provider("GET", "/v1/management/troops", &token, None)
        .await;
    assert_eq!(troops.status, 200, "{}", troops.text);
    assert_decodes(&troops);
    let troop = &troops.json["troops"][0];
    let troop_id = troop["id"].as_str().unwrap().to_owned();
    assert!(troop_id.starts_with("troop_"), "{troop}");
    assert_eq!(troop["can_manage"], true);
    assert!(troop["created_at"].is_i64());
    let one = app
        .provider(
            "GET",
            &format!("/v1/management/troops/{troop_id}"),
            &token,
            None,
        )
        .await;
    assert_eq!(one.json["troop"]["id"], troop_id.as_str());
    let account = app
        .provider("GET", "/v1/management/me/account", &token, None)
        .await;
    assert_eq!(account.json["account"]["email"], crate::helpers::OWNER);
    assert!(account.json["account"]["created_at"].is_i64());

    // Create: Go's encoding/json escapes `&`; the name comes back as the string it encodes.
    let body = format!(r#"{{"name":"Contact \u0026 Co","troop_id":"{troop_id}"}}"#);
    let created = app
        .provider("POST", "/v1/management/sites", &token, Some(&body))
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_decodes(&created);
    let site = &created.json["site"];
    assert_site_shape(site);
    assert_eq!(site["name"], "Contact & Co");
    assert_eq!(site["troop_id"], troop_id.as_str());
    assert_eq!(site["disabled"], false, "the planned default");
    let secret = created.json["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("cpt_sec_"), "{secret}");
    let id = site["id"].as_str().unwrap().to_owned();
    let key = site["key"].as_str().unwrap().to_owned();
    assert!(key.starts_with("cpt_pub_"));
    let created_at = site["created_at"].as_i64().unwrap();
    let path = format!("/v1/management/sites/{id}");

    // The new key answers at once; forwarding is off until a destination is set.
    assert_eq!(app.challenge(&key, None).await.status, 200);
    let posted = post_form(&app, &key, &[("email", "a@example.com")]).await;
    assert_eq!(posted.status, 403);
    assert_eq!(
        posted.json["error"], "forwarding-disabled",
        "{}",
        posted.text
    );

    // Read: the same seven fields.
    let read = app.provider("GET", &path, &token, None).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json["site"], *site);

    // Update: only the changed fields; id, key, created_at and troop_id stay.
    let patched = app
        .provider(
            "PATCH",
            &path,
            &token,
            Some(r#"{"disabled":true,"name":"Renamed"}"#),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.text);
    let after = &patched.json["site"];
    assert_site_shape(after);
    assert_eq!(after["name"], "Renamed");
    assert_eq!(after["disabled"], true);
    for same in ["id", "key", "troop_id", "created_at"] {
        assert_eq!(after[same], site[same], "{same}");
    }
    assert_eq!(after["created_at"].as_i64(), Some(created_at));

    // A disabled key refuses challenges, posts and siteverify, at once.
    let refused = app.challenge(&key, None).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json["code"], "site-disabled", "{}", refused.text);
    let verdict = siteverify(&app, &secret).await;
    assert_eq!(verdict.json["success"], false);
    assert_eq!(verdict.json["error-codes"], json!(["site-disabled"]));
    let enabled = app
        .provider("PATCH", &path, &token, Some(r#"{"disabled":false}"#))
        .await;
    assert_eq!(enabled.json["site"]["disabled"], false);
    assert_eq!(
        enabled.json["site"]["name"], "Renamed",
        "an absent field stays"
    );
    assert_eq!(app.challenge(&key, None).await.status, 200);

    // Rotate: `{}` as the body; the old secret stops verifying at once.
    let rotated = app
        .provider("POST", &format!("{path}/rotate-secret"), &token, Some("{}"))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new_secret = rotated.json["secret"].as_str().unwrap().to_owned();
    assert!(new_secret.starts_with("cpt_sec_") && new_secret != secret);
    let old = siteverify(&app, &secret).await;
    assert_eq!(old.json["error-codes"], json!(["invalid-input-secret"]));

    // Hosted verification: never configured reads 200 with enabled false and nulls.
    let hv_path = format!("/v1/management/hosted-verification/{id}");
    let blank = app.provider("GET", &hv_path, &token, None).await;
    assert_eq!(blank.status, 200, "{}", blank.text);
    assert_eq!(
        blank.json,
        json!({"site_id": id, "enabled": false, "webhook_url": null, "email_to": null,
               "created_at": null, "updated_at": null})
    );
    // The webhook spelled as a decimal IP: stored normalised, echoed as sent.
    let hook = format!("http://2130706433:{}/hook/secret-path", app.receiver.port);
    let put = format!(r#"{{"email_to":null,"enabled":true,"webhook_url":"{hook}"}}"#);
    let saved = app.provider("PUT", &hv_path, &token, Some(&put)).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_decodes(&saved);
    assert_eq!(saved.json["site_id"], id.as_str());
    assert_eq!(saved.json["enabled"], true);
    assert_eq!(
        saved.json["webhook_url"],
        hook.as_str(),
        "byte-identical echo"
    );
    assert_eq!(saved.json["email_to"], Value::Null);
    assert!(saved.json["created_at"].is_i64() && saved.json["updated_at"].is_i64());
    let reread = app.provider("GET", &hv_path, &token, None).await;
    assert_eq!(
        reread.json, saved.json,
        "a read gives back what the write answered"
    );
    let stored = app.state.sites.get(&key).unwrap();
    assert_eq!(
        stored.settings.webhook_url.as_ref().unwrap().expose(),
        format!("http://127.0.0.1:{}/hook/secret-path", app.receiver.port)
    );

    // A real form post now reaches the webhook the API set.
    let visitor = solve_token(&app, &key).await;
    let posted = post_form(
        &app,
        &key,
        &[("email", "ada@example.com"), ("caputchin-token", &visitor)],
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    let received = app.receiver.requests();
    assert_eq!(received.len(), 1);
    let envelope = received[0].json();
    assert_eq!(envelope["caputchin"]["site_key"], key.as_str());
    assert_eq!(envelope["form"], json!({"email": "ada@example.com"}));
    assert!(received[0].header("x-caputchin-test").is_none());

    // data "caputchin_site_stats": integer lifetime totals for the requested id.
    app.state.store.flush().await.unwrap();
    let stats = app
        .provider("GET", &format!("{path}/stats"), &token, None)
        .await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_decodes(&stats);
    assert_eq!(stats.json["site_id"], id.as_str());
    assert_eq!(stats.json["sessions_server_verified"], 1);
    assert_eq!(stats.json["webhook_delivered"], 1);
    assert!(
        stats.json["sessions_started"].as_i64().unwrap() >= 2,
        "{}",
        stats.text
    );

    // Cap config: the origins come back exactly as sent, in order.
    let config_path = format!("{path}/cap-config");
    let config = app.provider("GET", &config_path, &token, None).await;
    assert_eq!(config.status, 200, "{}", config.text);
    assert_eq!(config.json["site_id"], id.as_str());
    assert_eq!(config.json["config"]["cors_origins"], Value::Null);
    assert_eq!(config.json["config"]["obfuscation_level"], 1);
    let patch = r#"{"challenge_count":7,"cors_origins":["https://WWW.Example.com","http://localhost:3000"],"difficulty":3}"#;
    let changed = app
        .provider("PATCH", &config_path, &token, Some(patch))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let config = app.provider("GET", &config_path, &token, None).await;
    let c = &config.json["config"];
    assert_eq!(c["difficulty"], 3);
    assert_eq!(c["challenge_count"], 7);
    assert_eq!(
        c["cors_origins"],
        json!(["https://WWW.Example.com", "http://localhost:3000"])
    );
    assert!(c["difficulty"].is_i64() && c["challenge_count"].is_i64());
    let issued = app.challenge(&key, Some("https://www.example.com")).await;
    assert_eq!(issued.json["challenge"]["c"], 7, "{}", issued.text);
    let other = app.challenge(&key, Some("https://evil.example")).await;
    assert_eq!(other.status, 403, "the origins are in force");
    let security = app
        .provider("GET", &format!("{path}/security-settings"), &token, None)
        .await;
    assert_eq!(security.json["settings"]["require_game"], false);
    assert_eq!(security.json["settings"]["preview_mode"], Value::Null);

    // List: the row carries all seven fields.
    let listed = app
        .provider("GET", "/v1/management/sites", &token, None)
        .await;
    let rows = listed.json["sites"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_site_shape(&rows[0]);
    assert_eq!(rows[0]["id"], id.as_str());
    assert!(
        !listed.text.contains("secret-path"),
        "a list never shows a webhook"
    );

    // Destroy: 204, then 404 on every read (the provider then drops the resource).
    let deleted = app.provider("DELETE", &path, &token, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    for gone in [&path, &hv_path, &config_path] {
        let answer = app.provider("GET", gone, &token, None).await;
        assert_error(&answer, 404, "not-found");
    }
    let again = app.provider("DELETE", &path, &token, None).await;
    assert_error(&again, 404, "not-found");
    assert_eq!(
        app.challenge(&key, None).await.status,
        404,
        "unknown-site at once"
    );
}

#[actix_web::test]
async fn the_legacy_mcp_shapes_work_under_the_api_prefix() {
    let app = spawn_app().await;
    let token = app.token(Scope::Write, None);
    // `accept` and `content-type` on a body-less GET.
    let listed = mcp(&app, "GET", "/api/v1/management/sites", &token, "").await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json, json!({"sites": []}));
    // `{"name", "tier"}` without `troop_id`: the caller's troop; `tier` ignored.
    let created = mcp(
        &app,
        "POST",
        "/api/v1/management/sites",
        &token,
        r#"{"name":"Legacy","tier":"pro"}"#,
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["site"]["id"].as_str().unwrap().to_owned();
    let troops = mcp(&app, "GET", "/api/v1/management/troops", &token, "").await;
    assert_eq!(
        created.json["site"]["troop_id"],
        troops.json["troops"][0]["id"]
    );
    // Rotation with no body at all.
    let rotated = mcp(
        &app,
        "POST",
        &format!("/api/v1/management/sites/{id}/rotate-secret"),
        &token,
        "",
    )
    .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    // A hosted-verification PUT may leave a destination out: it stays as it is.
    let hv = format!("/api/v1/management/hosted-verification/{id}");
    let url = app.receiver.url();
    let set = mcp(
        &app,
        "PUT",
        &hv,
        &token,
        &format!(r#"{{"enabled":false,"webhook_url":"{url}"}}"#),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.text);
    let kept = mcp(&app, "PUT", &hv, &token, r#"{"enabled":true}"#).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert_eq!(kept.json["webhook_url"], url.as_str());
    assert_eq!(kept.json["enabled"], true);
    // The test, with an empty body: one Test delivery to the webhook, marked as a test.
    let tested = mcp(&app, "POST", &format!("{hv}/test"), &token, "").await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    assert_eq!(tested.json["site_id"], id.as_str());
    let results = tested.json["destinations"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{}", tested.text);
    assert_eq!(results[0]["destination"], "webhook");
    assert_eq!(results[0]["ok"], true);
    assert_eq!(results[0]["outcome"], "delivered");
    assert_eq!(results[0]["http_status"], 200);
    assert!(results[0]["latency_ms"].is_u64());
    let received = app.receiver.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-caputchin-test"), Some("1"));
    assert_eq!(received[0].json()["caputchin"]["test"], true);
    // Deleting with an empty JSON body.
    let deleted = mcp(
        &app,
        "DELETE",
        &format!("/api/v1/management/sites/{id}"),
        &token,
        "",
    )
    .await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
}

#[actix_web::test]
async fn bad_hosted_verification_and_config_writes_are_4xx_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.token(Scope::Write, None);
    let created = app
        .provider(
            "POST",
            "/v1/management/sites",
            &token,
            Some(r#"{"name":"S"}"#),
        )
        .await;
    let id = created.json["site"]["id"].as_str().unwrap().to_owned();
    let key = created.json["site"]["key"].as_str().unwrap().to_owned();
    let hv = format!("/v1/management/hosted-verification/{id}");
    let url = app.receiver.url();
    let good = format!(r#"{{"email_to":null,"enabled":false,"webhook_url":"{url}"}}"#);
    assert_eq!(
        app.provider("PUT", &hv, &token, Some(&good)).await.status,
        200
    );
    let before = app.state.sites.get(&key).unwrap();

    let cases: Vec<(String, u16, &str)> = vec![
        (
            r#"{"email_to":null,"enabled":true,"webhook_url":null}"#.into(),
            422,
            "no-destination",
        ),
        (
            r#"{"email_to":null,"enabled":true,"webhook_url":"ftp://x.example/"}"#.into(),
            422,
            "invalid-webhook-url",
        ),
        (
            r#"{"email_to":null,"enabled":true,"webhook_url":"https://u:p@x.example/"}"#.into(),
            422,
            "invalid-webhook-url",
        ),
        (
            format!(
                r#"{{"email_to":null,"enabled":true,"webhook_url":"https://x.example/{}"}}"#,
                "a".repeat(2100)
            ),
            422,
            "invalid-webhook-url",
        ),
        (
            r#"{"email_to":"owner@example.com","enabled":true,"webhook_url":null}"#.into(),
            422,
            "email-not-configured",
        ),
        (
            r#"{"email_to":"not an address","enabled":true}"#.into(),
            422,
            "invalid-email",
        ),
        (
            r#"{"email_to":"","enabled":true}"#.into(),
            422,
            "invalid-email",
        ),
        (
            r#"{"email_to":"a@x.example\r\nBcc: b@x.example","enabled":true}"#.into(),
            422,
            "invalid-email",
        ),
        (
            r#"{"email_to":"a@x.ex,b@x.ex,c@x.ex,d@x.ex,e@x.ex,f@x.ex","enabled":true}"#.into(),
            422,
            "too-many-recipients",
        ),
        (
            r#"{"email_to":["owner@example.com"],"enabled":true}"#.into(),
            400,
            "invalid-field",
        ),
        (
            r#"{"email_to":null,"webhook_url":null}"#.into(),
            400,
            "missing-field",
        ),
        (
            r#"{"email_to":null,"enabled":"yes","webhook_url":null}"#.into(),
            400,
            "invalid-field",
        ),
        (r#"{"enabled":true"#.into(), 400, "malformed-json"),
    ];
    for (body, status, code) in &cases {
        let refused = app.provider("PUT", &hv, &token, Some(body)).await;
        assert_error(&refused, *status, code);
    }
    let config = format!("/v1/management/sites/{id}/cap-config");
    let config_cases: Vec<(&str, u16, &str)> = vec![
        (r#"{"difficulty":9}"#, 422, "invalid-setting"),
        (r#"{"difficulty":0}"#, 422, "invalid-setting"),
        (r#"{"challenge_count":501}"#, 422, "invalid-setting"),
        (r#"{"difficulty":2.5}"#, 400, "invalid-field"),
        (r#"{"difficulty":"3"}"#, 400, "invalid-field"),
        (
            r#"{"cors_origins":["https://a.example/path"]}"#,
            422,
            "invalid-origin",
        ),
        (
            r#"{"cors_origins":"https://a.example"}"#,
            400,
            "invalid-field",
        ),
        (r#"{"ratelimit_max":100}"#, 422, "unsupported-setting"),
        (r#"{"instrumentation":true}"#, 422, "unsupported-setting"),
        (
            r#"{"obfuscation_level":3,"difficulty":3}"#,
            422,
            "unsupported-setting",
        ),
    ];
    for (body, status, code) in config_cases {
        let refused = app.provider("PATCH", &config, &token, Some(body)).await;
        assert_error(&refused, status, code);
    }
    let neutral = app
        .provider(
            "PATCH",
            &config,
            &token,
            Some(r#"{"instrumentation":false,"obfuscation_level":1,"ratelimit_max":null}"#),
        )
        .await;
    assert_eq!(
        neutral.status, 200,
        "the values read are accepted: {}",
        neutral.text
    );
    let security = format!("/v1/management/sites/{id}/security-settings");
    let refused = app
        .provider("PATCH", &security, &token, Some(r#"{"require_game":true}"#))
        .await;
    assert_error(&refused, 422, "unsupported-setting");
    let fine = app
        .provider("PATCH", &security, &token, Some(r#"{"proxy_gate":false}"#))
        .await;
    assert_eq!(fine.status, 200, "{}", fine.text);
    let site_cases: Vec<(&str, u16, &str)> = vec![
        (r#"{"name":""}"#, 422, "invalid-name"),
        (r#"{"name":" padded"}"#, 422, "invalid-name"),
        (r#"{"name":5}"#, 400, "invalid-field"),
        (r#"{"disabled":"no"}"#, 400, "invalid-field"),
        (r#"{"disabled":null}"#, 400, "invalid-field"),
    ];
    for (body, status, code) in site_cases {
        let path = format!("/v1/management/sites/{id}");
        let refused = app.provider("PATCH", &path, &token, Some(body)).await;
        assert_error(&refused, status, code);
    }
    let unknown_troop = app
        .provider(
            "POST",
            "/v1/management/sites",
            &token,
            Some(r#"{"name":"X","troop_id":"troop_0000000000000000"}"#),
        )
        .await;
    assert_error(&unknown_troop, 404, "not-found");

    let after = app.state.sites.get(&key).unwrap();
    assert_eq!(*after, *before, "no refused write changed the site");
    let listed = app
        .provider("GET", "/v1/management/sites", &token, None)
        .await;
    assert_eq!(
        listed.json["sites"].as_array().unwrap().len(),
        1,
        "no site was created"
    );
}

#[actix_web::test]
async fn read_tokens_only_read_and_site_bound_tokens_see_only_their_site() {
    let app = spawn_app().await;
    let mine = app.create_receiving_site("Mine");
    let other = app.create_receiving_site("Other");
    let reader = app.token(Scope::Read, None);
    let bound = app.token(Scope::Read, Some(&mine.site_id));
    let bound_writer = app.token(Scope::Write, Some(&mine.site_id));

    // A read token reads everything and writes nothing.
    let path = format!("/v1/management/sites/{}", mine.site_id);
    let hv = format!("/v1/management/hosted-verification/{}", mine.site_id);
    for (method, p) in [
        ("GET", path.clone()),
        ("GET", hv.clone()),
        ("GET", format!("{path}/cap-config")),
        ("GET", "/v1/management/sites".to_owned()),
    ] {
        let read = app.provider(method, &p, &reader, None).await;
        assert_eq!(read.status, 200, "{p}: {}", read.text);
    }
    let writes = [
        (
            "POST",
            "/v1/management/sites".to_owned(),
            Some(r#"{"name":"N"}"#),
        ),
        ("PATCH", path.clone(), Some(r#"{"name":"N"}"#)),
        ("DELETE", path.clone(), None),
        ("POST", format!("{path}/rotate-secret"), Some("{}")),
        (
            "PUT",
            hv.clone(),
            Some(r#"{"email_to":null,"enabled":false,"webhook_url":null}"#),
        ),
        ("POST", format!("{hv}/test"), Some("{}")),
        (
            "PATCH",
            format!("{path}/cap-config"),
            Some(r#"{"difficulty":3}"#),
        ),
    ];
    for (method, p, body) in &writes {
        for token in [&reader, &bound] {
            let refused = app.provider(method, p, token, *body).await;
            assert_error(&refused, 403, "insufficient-scope");
        }
    }
    assert!(app.receiver.requests().is_empty(), "no test delivery ran");
    assert_eq!(
        app.state
            .sites
            .get(mine.site_key.as_str())
            .unwrap()
            .settings
            .name,
        "Mine"
    );

    // A site-bound token lists and reads only its site; others are 404, creating is 403.
    let listed = app
        .provider("GET", "/v1/management/sites", &bound, None)
        .await;
    let rows = listed.json["sites"].as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], mine.site_id.as_str());
    let other_path = format!("/v1/management/sites/{}", other.site_id);
    for p in [
        other_path.clone(),
        format!("/v1/management/hosted-verification/{}", other.site_id),
        format!("{other_path}/cap-config"),
    ] {
        let hidden = app.provider("GET", &p, &bound, None).await;
        assert_error(&hidden, 404, "not-found");
    }
    let renamed = app
        .provider(
            "PATCH",
            &other_path,
            &bound_writer,
            Some(r#"{"name":"Taken"}"#),
        )
        .await;
    assert_error(&renamed, 404, "not-found");
    let own = app
        .provider(
            "PATCH",
            &path,
            &bound_writer,
            Some(r#"{"name":"Mine too"}"#),
        )
        .await;
    assert_eq!(own.status, 200, "{}", own.text);
    let create = app
        .provider(
            "POST",
            "/v1/management/sites",
            &bound_writer,
            Some(r#"{"name":"N"}"#),
        )
        .await;
    assert_error(&create, 403, "insufficient-scope");
    // A path naming the public key instead of the id is 404.
    let by_key = app
        .provider(
            "GET",
            &format!("/v1/management/sites/{}", mine.site_key.as_str()),
            &reader,
            None,
        )
        .await;
    assert_error(&by_key, 404, "not-found");
}

#[actix_web::test]
async fn another_accounts_sites_and_troop_are_not_found_anywhere() {
    let app = spawn_app().await;
    let theirs = app.create_receiving_site("Theirs");
    caputchin_forwarder::accounts::create_account(
        &app.state.store,
        "intruder@example.com",
        "another long password",
        1,
    )
    .unwrap();
    let intruder =
        caputchin_forwarder::accounts::find_account(&app.state.store, "intruder@example.com")
            .unwrap();
    let token = caputchin_forwarder::access_tokens::create_token(
        &app.state.store,
        intruder.id,
        &caputchin_forwarder::access_tokens::TokenInput {
            name: "intruder".into(),
            ..Default::default()
        },
        1,
    )
    .unwrap()
    .value;
    let owner_troop = app
        .provider(
            "GET",
            "/v1/management/troops",
            &app.token(Scope::Read, None),
            None,
        )
        .await
        .json["troops"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(owner_troop, intruder.troop_id);
    let path = format!("/v1/management/sites/{}", theirs.site_id);
    let hv = format!("/v1/management/hosted-verification/{}", theirs.site_id);
    let body = |b: &str| Some(b.to_owned());
    let attempts: Vec<(&str, String, Option<String>)> = vec![
        ("GET", path.clone(), None),
        ("PATCH", path.clone(), body(r#"{"name":"Mine now"}"#)),
        ("DELETE", path.clone(), None),
        ("POST", format!("{path}/rotate-secret"), body("{}")),
        ("GET", format!("{path}/cap-config"), None),
        (
            "PATCH",
            format!("{path}/cap-config"),
            body(r#"{"difficulty":1}"#),
        ),
        ("GET", hv.clone(), None),
        (
            "PUT",
            hv.clone(),
            body(r#"{"email_to":null,"enabled":false,"webhook_url":null}"#),
        ),
        ("POST", format!("{hv}/test"), None),
        ("GET", format!("/v1/management/troops/{owner_troop}"), None),
        (
            "POST",
            "/v1/management/sites".to_owned(),
            Some(format!(r#"{{"name":"X","troop_id":"{owner_troop}"}}"#)),
        ),
    ];
    for (method, p, body) in attempts {
        let answer = app.provider(method, &p, &token, body.as_deref()).await;
        assert_error(&answer, 404, "not-found");
    }
    let listed = app
        .provider("GET", "/v1/management/sites", &token, None)
        .await;
    assert_eq!(listed.json, json!({"sites": []}));
    let site = app.state.sites.get(theirs.site_key.as_str()).unwrap();
    assert_eq!(site.settings.name, "Theirs");
    assert!(site.settings.webhook_url.is_some());
    assert!(app.receiver.requests().is_empty());
}

#[actix_web::test]
async fn a_site_made_over_the_api_is_edited_in_the_dashboard_with_its_key_switch() {
    let app = spawn_app().await;
    let token = app.token(Scope::Write, None);
    let created = app
        .provider(
            "POST",
            "/v1/management/sites",
            &token,
            Some(r#"{"name":"From CI"}"#),
        )
        .await;
    let id = created.json["site"]["id"].as_str().unwrap().to_owned();
    let key = created.json["site"]["key"].as_str().unwrap().to_owned();
    let mut browser = crate::dashboard::logged_in(&app).await;
    let edit = format!("/sites/{id}/edit");
    let page = browser.get(&edit).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text
            .contains(r#"name="key_disabled" type="checkbox" value="on">"#)
    );

    // Forwarding on needs a destination; the form says so and nothing changes.
    let fields = [
        ("name", "From CI"),
        ("enabled", "on"),
        ("challenge_count", "3"),
        ("difficulty", "2"),
    ];
    let refused = browser.submit(&edit, &edit, &fields).await;
    assert_eq!(refused.status, 422);
    assert!(
        refused.text.contains("Forwarding needs a webhook URL"),
        "{}",
        refused.text
    );
    assert!(!app.state.sites.get(&key).unwrap().settings.enabled);

    // The key switch, with forwarding still off and no destination.
    let fields = [
        ("name", "From CI"),
        ("key_disabled", "on"),
        ("challenge_count", "3"),
        ("difficulty", "2"),
    ];
    let saved = browser.submit(&edit, &edit, &fields).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert!(saved.text.contains("Saved."), "{}", saved.text);
    assert!(app.state.sites.get(&key).unwrap().settings.disabled);
    assert_eq!(
        app.challenge(&key, None).await.json["code"],
        "site-disabled"
    );
    let read = app
        .provider("GET", &format!("/v1/management/sites/{id}"), &token, None)
        .await;
    assert_eq!(
        read.json["site"]["disabled"], true,
        "the API reads the dashboard's change"
    );
    let page = browser.get(&edit).await;
    assert!(
        page.text
            .contains(r#"name="key_disabled" type="checkbox" value="on" checked>"#)
    );
}

/// A Cap challenge request on a connection of its own, with this `Origin` when given.
async fn challenge(app: &TestApp, key: &str, origin: Option<&str>) -> Answer {
    let mut req = awc::Client::default().post(app.url(&format!("/v1/cap/{key}/challenge")));
    if let Some(origin) = origin {
        req = req.insert_header(("Origin", origin));
    }
    crate::helpers::answer(req.send().await.unwrap()).await
}

#[actix_web::test]
async fn site_stats_count_what_caputchins_stats_report_and_the_dashboard_shows_them() {
    let app = crate::helpers::spawn_app_with(|s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.challenge_rate_limit_per_min = 4;
        s.rate_limit_per_min = 3;
    })
    .await;
    let mut input = crate::helpers::site_input("Counted");
    input.webhook_url = app.receiver.url();
    input.allowed_origins = vec!["https://ok.example".into()];
    let site = app.create_site(&input);
    let key = site.site_key.as_str().to_owned();
    let token = app.token(Scope::Read, Some(&site.site_id));
    let ok = ("Origin", "https://ok.example");

    // Challenge 1, solved; challenge 2, a wrong redeem; a challenge from a refused origin.
    let first = solve_token(&app, &key).await;
    let issued = challenge(&app, &key, None).await;
    let wrong = awc::Client::default()
        .post(app.url(&format!("/v1/cap/{key}/redeem")))
        .send_json(&json!({"token": issued.json["token"], "solutions": [0, 0, 0]}))
        .await
        .unwrap();
    assert_eq!(crate::helpers::answer(wrong).await.json["success"], false);
    assert_eq!(
        challenge(&app, &key, Some("https://evil.example"))
            .await
            .status,
        403
    );

    // Form posts: accepted and delivered, replayed, from a refused origin.
    let post = |fields: Vec<(&'static str, String)>, origin: &'static str| {
        let app = &app;
        let key = key.clone();
        async move {
            let res = awc::Client::default()
                .post(app.url(&format!("/f/{key}")))
                .insert_header(("Accept", "application/json"))
                .insert_header(("Origin", origin))
                .send_form(&fields)
                .await
                .unwrap();
            crate::helpers::answer(res).await
        }
    };
    let delivered = post(vec![("caputchin-token", first.clone())], ok.1).await;
    assert_eq!(delivered.status, 200, "{}", delivered.text);
    let replayed = post(vec![("caputchin-token", first.clone())], ok.1).await;
    assert_eq!(replayed.json["error"], "timeout-or-duplicate");
    let elsewhere = post(vec![("caputchin-token", first)], "https://evil.example").await;
    assert_eq!(elsewhere.json["error"], "origin-not-allowed");

    // Siteverify: a fresh token accepted (challenge 3), a broken one refused.
    let second = solve_token(&app, &key).await;
    assert_eq!(
        siteverify_token(&app, &site.secret, &second).await.json["success"],
        true
    );
    assert_eq!(siteverify(&app, &site.secret).await.json["success"], false);

    // Over the form's budget (3 a minute), then over the challenge budget (4 a minute).
    assert_eq!(post(vec![], ok.1).await.json["error"], "missing-token");
    assert_eq!(post(vec![], ok.1).await.status, 429);
    assert_eq!(challenge(&app, &key, None).await.status, 200);
    assert_eq!(challenge(&app, &key, None).await.status, 429);

    app.state.store.flush().await.unwrap();
    let path = format!("/v1/management/sites/{}/stats", site.site_id);
    let stats = app.provider("GET", &path, &token, None).await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_decodes(&stats);
    assert_eq!(
        stats.json,
        json!({
            "site_id": site.site_id,
            "sessions_started": 4,
            "sessions_client_completed": 2,
            "sessions_server_verified": 2,
            "failed_client_completion": 1,
            "failed_server_verification": 2,
            "rate_limit_rejections": 2,
            "challenge_blocked": 2,
            "webhook_delivered": 1,
            "webhook_failed": 0,
            "email_delivered": 0,
            "email_failed": 0,
        })
    );
    let unknown = app
        .provider(
            "GET",
            "/v1/management/sites/site_0000000000000000/stats",
            &token,
            None,
        )
        .await;
    assert_error(&unknown, 404, "not-found");

    let mut browser = crate::dashboard::logged_in(&app).await;
    let page = browser
        .get(&format!("/sites/{}/stats?range=all", site.site_id))
        .await;
    assert_eq!(page.status, 200);
    for (tile, value) in [
        ("tile-redeems-failed", "1"),
        ("tile-tokens-accepted", "2"),
        ("tile-tokens-refused", "2"),
        ("tile-rate-limited", "2"),
        ("tile-origin-refused", "2"),
    ] {
        assert_eq!(crate::dashboard::tile(&page.text, tile), value, "{tile}");
    }
}

/// A backend's siteverify call with this secret and token.
async fn siteverify_token(app: &TestApp, secret: &str, token: &str) -> Answer {
    let res = awc::Client::default()
        .post(app.url("/v1/siteverify"))
        .send_json(&json!({"secret": secret, "response": token}))
        .await
        .unwrap();
    crate::helpers::answer(res).await
}

#[actix_web::test]
async fn our_extensions_read_and_change_the_full_settings_and_the_delivery_statistics() {
    let app = spawn_app().await;
    let site = app.create_receiving_site("Extended");
    let key = site.site_key.as_str().to_owned();
    let token = app.token(Scope::Write, None);
    let reader = app.token(Scope::Read, None);
    let base = format!("/v1/management/sites/{}", site.site_id);

    let settings = app
        .provider("GET", &format!("{base}/settings"), &reader, None)
        .await;
    assert_eq!(settings.status, 200, "{}", settings.text);
    let s = &settings.json;
    assert_eq!(s["key"], key.as_str());
    assert_eq!(s["forwarding_enabled"], true);
    assert_eq!(s["disabled"], false);
    assert_eq!(s["challenge_count"], 3);
    assert_eq!(s["verifier"], "builtin");
    assert_eq!(s["verifier_secret_set"], false);
    assert_eq!(s["redirect_url"], Value::Null);

    let patch = format!("{base}/settings");
    let refused = app
        .provider("PATCH", &patch, &reader, Some(r#"{"challenge_count":9}"#))
        .await;
    assert_error(&refused, 403, "insufficient-scope");
    let no_secret = app
        .provider("PATCH", &patch, &token, Some(r#"{"verifier":"turnstile"}"#))
        .await;
    assert_error(&no_secret, 422, "invalid-verifier");
    let bad_redirect = app
        .provider(
            "PATCH",
            &patch,
            &token,
            Some(r#"{"redirect_url":"/thanks"}"#),
        )
        .await;
    assert_error(&bad_redirect, 422, "invalid-redirect-url");
    let changed = app
        .provider(
            "PATCH",
            &patch,
            &token,
            Some(r#"{"allowed_origins":["https://A.example"],"challenge_count":9,"redirect_url":"https://example.com/thanks","verifier":"turnstile","verifier_secret":"ts-very-secret"}"#),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let c = &changed.json;
    assert_eq!(c["allowed_origins"], json!(["https://A.example"]));
    assert_eq!(c["challenge_count"], 9);
    assert_eq!(c["redirect_url"], "https://example.com/thanks");
    assert_eq!(c["verifier"], "turnstile");
    assert_eq!(c["verifier_secret_set"], true);
    assert!(
        !changed.text.contains("ts-very-secret"),
        "the secret is write-only"
    );
    let stored = app.state.sites.get(&key).unwrap();
    assert_eq!(stored.settings.allowed_origins, ["https://a.example"]);
    assert_eq!(stored.settings.challenge.count, 9);
    // Back to the built-in verifier, so that a real post can be verified here.
    let back = app
        .provider(
            "PATCH",
            &patch,
            &token,
            Some(r#"{"allowed_origins":null,"verifier":"builtin"}"#),
        )
        .await;
    assert_eq!(back.status, 200, "{}", back.text);

    // One real delivery and one test delivery.
    let visitor = solve_token(&app, &key).await;
    let posted = post_form(
        &app,
        &key,
        &[("email", "ada@example.com"), ("caputchin-token", &visitor)],
    )
    .await;
    assert_eq!(posted.status, 200, "{}", posted.text);
    let hv = format!("/v1/management/hosted-verification/{}/test", site.site_id);
    assert_eq!(
        app.provider("POST", &hv, &token, Some("{}")).await.status,
        200
    );
    app.state.store.flush().await.unwrap();

    let stats = app
        .provider(
            "GET",
            &format!("{base}/delivery-stats?range=all"),
            &reader,
            None,
        )
        .await;
    assert_eq!(stats.status, 200, "{}", stats.text);
    assert_eq!(stats.json["site_id"], site.site_id.as_str());
    assert_eq!(stats.json["range"], "all");
    assert_eq!(stats.json["delivered"], 1);
    assert_eq!(stats.json["test_deliveries"], 1);
    assert_eq!(stats.json["destinations"]["webhook"]["delivered"], 1);
    assert!(stats.json.get("recent").is_none());
    let bad = app
        .provider(
            "GET",
            &format!("{base}/delivery-stats?range=forever"),
            &reader,
            None,
        )
        .await;
    assert_error(&bad, 400, "invalid-field");
    let twice = app
        .provider(
            "GET",
            &format!("{base}/delivery-stats?range=7d&range=all"),
            &reader,
            None,
        )
        .await;
    assert_error(&twice, 400, "invalid-field");

    let latest = app
        .provider("GET", &format!("{base}/deliveries"), &reader, None)
        .await;
    assert_eq!(latest.status, 200, "{}", latest.text);
    let rows = latest.json["deliveries"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{}", latest.text);
    assert_eq!(rows.iter().filter(|r| r["test"] == true).count(), 1);
    assert!(
        rows.iter()
            .all(|r| r["outcome"] == "delivered" && r["at"].is_i64())
    );
    assert!(
        !latest.text.contains("ada@example.com"),
        "never form contents"
    );
    assert!(
        !latest.text.contains("secret-path"),
        "never the webhook URL"
    );
}
