//! What a newcomer meets in the dashboard: the test form on a restricted site, field messages,
//! the destination check at creation, solve-time estimates, rotation with a grace period, origin
//! refusals that say what they saw, statistics that follow the range, thank-you and deleted
//! notices.

use caputchin_forwarder::captcha::cap::ChallengeParams;
use caputchin_forwarder::captcha::solve_time::SolveTime;
use caputchin_forwarder::clock::Clock as _;
use caputchin_forwarder::stats::{self, Range, Scope};

use crate::dashboard::{Browser, create_site, location, logged_in, site_fields, tile};
use crate::helpers::{Answer, TestApp, spawn_app, spawn_app_with};

/// The site key shown on a site page.
fn key_on(page: &Answer) -> String {
    let at = page.text.find("cpt_pub_").unwrap();
    page.text[at..at + 32].to_owned()
}

/// Creates a site whose only allowed origin is `origin`; returns (site id, key, secret).
async fn restricted_site(
    app: &TestApp,
    browser: &mut Browser<'_>,
    origin: &str,
) -> (String, String, String) {
    let webhook = app.receiver.url();
    let mut fields = site_fields("Contact", &webhook);
    fields.retain(|f| f.0 != "allowed_origins");
    fields.push(("allowed_origins", origin));
    let created = browser.submit("/sites/new", "/sites", &fields).await;
    assert_eq!(created.status, 200, "{}", created.text);
    let secret_at = created.text.find("cpt_sec_").unwrap();
    let secret = created.text[secret_at..secret_at + 56].to_owned();
    let id_at = created.text.find("/sites/site_").unwrap() + 7;
    let id = created.text[id_at..id_at + 21].to_owned();
    let key = key_on(&browser.get(&format!("/sites/{id}")).await);
    (id, key, secret)
}

/// The `action` of the test form on a dashboard page.
fn action_of(page: &str) -> String {
    let start = page.find("action=\"").unwrap() + 8;
    let action = &page[start..start + page[start..].find('"').unwrap()];
    action.replace("&#38;", "&")
}

#[actix_web::test]
async fn the_dashboard_test_form_works_on_a_restricted_site_and_counts_as_a_test() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, key, _) = restricted_site(&app, &mut browser, "https://www.example.com").await;
    let own = app.state.settings.public_url.clone();

    let form = browser.get(&format!("/sites/{id}/try")).await;
    assert_eq!(form.status, 200);
    let action = action_of(&form.text);
    let path = action
        .strip_prefix(&app.state.settings.public_url)
        .unwrap()
        .to_owned();
    assert!(path.starts_with(&format!("/f/{key}?preview=")), "{path}");

    // The widget on the forwarder's own page may ask for a challenge of a restricted site.
    assert_eq!(app.challenge(&key, Some(&own)).await.status, 200);
    assert_eq!(
        app.challenge(&key, Some("https://evil.example"))
            .await
            .status,
        403
    );

    let token = app.solve_token(&key).await;
    let body = format!("email=preview%40example.com&message=hi&caputchin-token={token}");
    let sent = app
        .post_with(
            &path,
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            &[("Origin", &own)],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert!(sent.text.contains("Test delivered"), "{}", sent.text);
    assert!(sent.text.contains(&format!("href=\"/sites/{id}\"")));
    let requests = app.receiver.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].header("x-caputchin-test"), Some("1"));
    let envelope = requests[0].json();
    assert_eq!(envelope["caputchin"]["test"], true);
    assert_eq!(envelope["form"]["email"], "preview@example.com");
    assert!(
        envelope["caputchin"]["session_id"]
            .as_str()
            .unwrap()
            .starts_with("test_"),
        "a test's session id says so (the webhook contract)"
    );
    assert!(envelope["form"].get("caputchin-token").is_none());

    // The same page's form without its pass is a real post from an origin the site refuses.
    let token = app.solve_token(&key).await;
    let body = format!("email=a%40b.c&caputchin-token={token}");
    let refused = app
        .post_with(
            &format!("/f/{key}"),
            "application/x-www-form-urlencoded",
            body.into_bytes(),
            &[("Origin", &own), ("Accept", "application/json")],
        )
        .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.json["error"], "origin-not-allowed");
    // An expired or forged pass is told to reload the test form: neither real nor a rejection.
    app.clock
        .advance_ms(caputchin_forwarder::web::preview::PASS_TTL_MS);
    for stale in [
        path.clone(),
        format!("/f/{key}?preview=99999999999999.00000000000000000000000000000000"),
    ] {
        let token = app.solve_token(&key).await;
        let expired = app
            .post_with(
                &stale,
                "application/x-www-form-urlencoded",
                format!("email=a%40b.c&caputchin-token={token}").into_bytes(),
                &[("Origin", &own), ("Accept", "application/json")],
            )
            .await;
        assert_eq!(expired.status, 403, "{stale}");
        let message = expired.json["message"].as_str().unwrap();
        assert!(message.contains("test form has expired"), "{message}");
    }
    assert_eq!(
        app.receiver.requests().len(),
        1,
        "nothing more was delivered"
    );
    let path = action_of(&browser.get(&format!("/sites/{id}/try")).await.text)
        .strip_prefix(&app.state.settings.public_url)
        .unwrap()
        .to_owned();
    // A pass is bound to its site.
    let other = restricted_site(&app, &mut browser, "https://www.example.com").await;
    let other_path = path.replace(&key, &other.1);
    let token = app.solve_token(&other.1).await;
    let refused = app
        .post_with(
            &other_path,
            "application/x-www-form-urlencoded",
            format!("email=a%40b.c&caputchin-token={token}").into_bytes(),
            &[("Origin", &own), ("Accept", "application/json")],
        )
        .await;
    assert_eq!(refused.status, 403);

    // Counted as a test delivery, apart from real traffic; only the post without a pass is a
    // rejection; challenges asked for from the forwarder's own origin are not counted.
    let now = app.clock.now_ms();
    let site_id = site_id_of(&app, &key);
    let numbers = stats::query(&app.state.store, Scope::Site(&site_id), Range::All, now).unwrap();
    assert_eq!((numbers.delivered, numbers.test_deliveries), (0, 1));
    assert_eq!(numbers.rejected, 1, "only the post without a pass");
    assert_eq!(app.challenge(&key, Some(&own)).await.status, 200);
    app.db_count("SELECT 1");
    let again = stats::query(&app.state.store, Scope::Site(&site_id), Range::All, now).unwrap();
    assert_eq!(again.challenges_issued, numbers.challenges_issued);
    assert!(numbers.challenges_issued > 0, "the others are counted");
    let page = browser.get(&format!("/sites/{id}/stats?range=today")).await;
    assert_eq!(tile(&page.text, "tile-webhook-delivered"), "0");
    assert_eq!(tile(&page.text, "tile-email-delivered"), "0");
}

fn site_id_of(app: &TestApp, key: &str) -> String {
    app.state.sites.get(key).unwrap().id.clone()
}

#[actix_web::test]
async fn the_dashboard_test_form_needs_the_owner_and_works_while_forwarding_is_off() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, key, _) = restricted_site(&app, &mut browser, "https://www.example.com").await;
    let webhook = app.receiver.url();
    let mut fields = site_fields("Contact", &webhook);
    fields.retain(|f| f.0 != "enabled");
    let saved = browser
        .submit(
            &format!("/sites/{id}/edit"),
            &format!("/sites/{id}/edit"),
            &fields,
        )
        .await;
    assert!(saved.text.contains("forwarding disabled"), "{}", saved.text);

    let mut stranger = Browser::new(&app);
    let answer = stranger.get(&format!("/sites/{id}/try")).await;
    assert_eq!((answer.status, location(&answer)), (303, "/login"));

    let action = action_of(&browser.get(&format!("/sites/{id}/try")).await.text);
    let path = action.strip_prefix(&app.state.settings.public_url).unwrap();
    let token = app.solve_token(&key).await;
    let sent = app
        .post_with(
            path,
            "application/x-www-form-urlencoded",
            format!("email=a%40b.c&caputchin-token={token}").into_bytes(),
            &[("Origin", &app.state.settings.public_url)],
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(app.receiver.requests().len(), 1);
    // A real post is still refused: forwarding is off.
    let token = app.solve_token(&key).await;
    let real = app
        .post_form(&key, &[("email", "a@b.c"), ("caputchin-token", &token)])
        .await;
    assert_eq!(real.status, 403);
}

#[actix_web::test]
async fn a_bad_difficulty_is_named_on_its_own_field_in_words() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let mut fields = site_fields("Contact", "https://hooks.example.com/x");
    fields.retain(|f| f.0 != "difficulty" && f.0 != "challenge_count");
    let mut bad_difficulty = fields.clone();
    bad_difficulty.extend([("challenge_count", "3"), ("difficulty", "9")]);
    let answer = browser
        .submit("/sites/new", "/sites", &bad_difficulty)
        .await;
    assert_eq!(answer.status, 422);
    let text = &answer.text;
    assert!(
        text.contains(
            "<p class=\"error\" id=\"difficulty-error\">Difficulty must be between 1 and 8.</p>"
        ),
        "{text}"
    );
    let count_input = &text[text.find("id=\"challenge_count\"").unwrap()..];
    let count_input = &count_input[..count_input.find('>').unwrap()];
    assert!(!count_input.contains("aria-invalid"), "{count_input}");
    assert!(!text.contains("..="), "no Rust range syntax");

    let mut bad_count = fields;
    bad_count.extend([("challenge_count", "501"), ("difficulty", "4")]);
    let answer = browser.submit("/sites/new", "/sites", &bad_count).await;
    assert!(
        answer
            .text
            .contains("id=\"challenges-error\">Challenges must be between 1 and 500.</p>"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains("difficulty-error"));
}

#[actix_web::test]
async fn creating_a_site_checks_its_destination_and_names_the_setting_that_unblocks_it() {
    let app = spawn_app_with(|_| {}).await;
    let mut browser = logged_in(&app).await;
    let created = browser
        .submit(
            "/sites/new",
            "/sites",
            &site_fields("Contact", "http://10.1.2.3/hook"),
        )
        .await;
    assert_eq!(created.status, 200);
    let text = &created.text;
    assert!(
        text.contains("delivery would be blocked (10.1.2.3 is in 10.0.0.0/8 (private))"),
        "{text}"
    );
    assert!(
        text.contains("CAPUTCHIN_EGRESS_ALLOW=10.1.2.3/32"),
        "{text}"
    );
    // The page leads with the snippet; the secret is the optional part after it.
    let snippet = text.find("id=\"snippet-widget\"").unwrap();
    let secret = text.find("id=\"secret\"").unwrap();
    assert!(snippet < secret);
    assert!(text.contains("Only if your site has a backend"));

    let id_at = text.find("/sites/site_").unwrap() + 7;
    let id = text[id_at..id_at + 21].to_owned();
    let tested = browser
        .submit(&format!("/sites/{id}"), &format!("/sites/{id}/test"), &[])
        .await;
    assert!(
        tested.text.contains("blocked-destination"),
        "{}",
        tested.text
    );
    assert!(
        tested.text.contains("CAPUTCHIN_EGRESS_ALLOW=10.1.2.3/32"),
        "{}",
        tested.text
    );
    assert_eq!(app.receiver.connection_count(), 0);
}

#[actix_web::test]
async fn the_site_form_shows_the_expected_solve_time_and_warns_when_it_is_slow() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let new = browser.get("/sites/new").await;
    let default = SolveTime::of(ChallengeParams::default());
    assert!(new.text.contains(&default.sentence()), "{}", new.text);
    assert!(new.text.contains("class=\"estimate-warning\" hidden"));

    let webhook = app.receiver.url();
    let (id, _) = create_site(&mut browser, "Contact", &webhook).await;
    let mut fields = site_fields("Contact", &webhook);
    fields.retain(|f| f.0 != "difficulty");
    fields.push(("difficulty", "5"));
    let saved = browser
        .submit(
            &format!("/sites/{id}/edit"),
            &format!("/sites/{id}/edit"),
            &fields,
        )
        .await;
    let slow = SolveTime::of(ChallengeParams::new(3, 5).unwrap());
    assert!(
        saved.text.contains(&slow.sentence()),
        "the site page: {}",
        saved.text
    );
    let edit = browser.get(&format!("/sites/{id}/edit")).await;
    assert_eq!(
        slow.is_slow(),
        !edit.text.contains("class=\"estimate-warning\" hidden")
    );
    let big = SolveTime::of(ChallengeParams::new(32, 5).unwrap());
    assert!(big.is_slow() && !default.is_slow());
    assert!(big.phone_ms >= 16 * default.phone_ms - 16);
}

#[actix_web::test]
async fn a_rotated_secret_keeps_working_for_its_grace_period_and_then_stops() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, old) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    let key = key_on(&browser.get(&format!("/sites/{id}")).await);

    // Without the confirmation nothing changes.
    let csrf = browser.csrf(&format!("/sites/{id}")).await;
    let unconfirmed = browser
        .post(&format!("/sites/{id}/rotate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(unconfirmed.status, 303);
    assert_eq!(location(&unconfirmed), format!("/sites/{id}/rotate"));
    let token = app.solve_token(&key).await;
    assert_eq!(app.siteverify(&old, &token).await.json["success"], true);

    let rotated = browser
        .submit(
            &format!("/sites/{id}/rotate"),
            &format!("/sites/{id}/rotate"),
            &[("confirm", "yes"), ("grace", "1h")],
        )
        .await;
    assert!(
        rotated.text.contains("keeps working until"),
        "{}",
        rotated.text
    );
    let new = {
        let at = rotated.text.find("cpt_sec_").unwrap();
        rotated.text[at..at + 56].to_owned()
    };
    let page = browser.get(&format!("/sites/{id}")).await;
    assert!(
        page.text.contains("id=\"previous-secret\""),
        "{}",
        page.text
    );

    app.clock.advance_ms(3_600_000 - 1);
    let token = app.solve_token(&key).await;
    assert_eq!(app.siteverify(&old, &token).await.json["success"], true);
    let token = app.solve_token(&key).await;
    assert_eq!(app.siteverify(&new, &token).await.json["success"], true);

    app.clock.advance_ms(1);
    let token = app.solve_token(&key).await;
    assert_eq!(
        app.siteverify(&old, &token).await.json["error-codes"][0],
        "invalid-input-secret"
    );
    assert_eq!(app.siteverify(&new, &token).await.json["success"], true);
    let page = browser.get(&format!("/sites/{id}")).await;
    assert!(!page.text.contains("id=\"previous-secret\""));

    // No grace: the replaced secret stops at once.
    let again = browser
        .submit(
            &format!("/sites/{id}/rotate"),
            &format!("/sites/{id}/rotate"),
            &[("confirm", "yes"), ("grace", "none")],
        )
        .await;
    assert!(again.text.contains("The previous secret no longer works"));
    let token = app.solve_token(&key).await;
    assert_eq!(
        app.siteverify(&new, &token).await.json["error-codes"][0],
        "invalid-input-secret"
    );
}

#[actix_web::test]
async fn an_origin_refusal_names_the_origin_and_origins_may_be_comma_separated() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, key, _) = restricted_site(
        &app,
        &mut browser,
        "http://127.0.0.1:8000, https://www.example.com",
    )
    .await;
    let page = browser.get(&format!("/sites/{id}")).await;
    assert!(
        page.text
            .contains("<code>http://127.0.0.1:8000</code><br><code>https://www.example.com</code>"),
        "{}",
        page.text
    );

    let token = app.solve_token(&key).await;
    let refused = app
        .post_form_with(
            &key,
            &[("email", "a@b.c"), ("caputchin-token", &token)],
            &[
                ("Origin", "http://localhost:8000"),
                ("Accept", "application/json"),
            ],
        )
        .await;
    assert_eq!(refused.status, 403);
    let message = refused.json["message"].as_str().unwrap();
    assert!(message.contains("http://localhost:8000"), "{message}");
    assert!(message.contains("2 other origins"), "{message}");
    let html = app
        .post_form_with(
            &key,
            &[("email", "a@b.c"), ("caputchin-token", &token)],
            &[("Origin", "http://localhost:8000")],
        )
        .await;
    assert!(html.text.contains("http://localhost:8000"), "{}", html.text);
}

#[actix_web::test]
async fn the_thank_you_page_links_back_only_to_an_allowed_origin() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (_, key, _) = restricted_site(&app, &mut browser, "https://www.example.com").await;
    let token = app.solve_token(&key).await;
    let thanked = app
        .post_form_with(
            &key,
            &[("email", "a@b.c"), ("caputchin-token", &token)],
            &[("Referer", "https://www.example.com/contact?x=1")],
        )
        .await;
    assert_eq!(thanked.status, 200, "{}", thanked.text);
    assert!(
        thanked.text.contains(
            "<a href=\"https://www.example.com/contact?x=1\">Back to https://www.example.com/contact?x=1</a>"
        ),
        "{}",
        thanked.text
    );

    let open = app.create_receiving_site("Open");
    let token = app.solve_token(open.site_key.as_str()).await;
    let no_referer = app
        .post_form(open.site_key.as_str(), &[("caputchin-token", &token)])
        .await;
    assert!(!no_referer.text.contains("Back to "));
    let token = app.solve_token(open.site_key.as_str()).await;
    let script = app
        .post_form_with(
            open.site_key.as_str(),
            &[("caputchin-token", &token)],
            &[("Referer", "javascript:alert(1)")],
        )
        .await;
    assert!(!script.text.contains("javascript:"), "{}", script.text);
}

#[actix_web::test]
async fn latest_deliveries_follow_the_range_and_challenges_are_counted_per_site() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    browser
        .submit(&format!("/sites/{id}"), &format!("/sites/{id}/test"), &[])
        .await;
    app.clock.advance_ms(86_400_000);
    let today = browser.get(&format!("/sites/{id}/stats?range=today")).await;
    assert!(
        today.text.contains("No deliveries in this range."),
        "{}",
        today.text
    );
    let week = browser.get(&format!("/sites/{id}/stats?range=7d")).await;
    assert!(week.text.contains("badge test"));

    let key = key_on(&browser.get(&format!("/sites/{id}")).await);
    for _ in 0..3 {
        app.challenge(&key, None).await;
    }
    app.solve_token(&key).await;
    app.db_count("SELECT 1");
    let page = browser.get(&format!("/sites/{id}/stats?range=today")).await;
    assert_eq!(tile(&page.text, "tile-issued"), "4");
    assert_eq!(tile(&page.text, "tile-solved"), "1");
    let yesterday = browser
        .get(&format!("/sites/{id}/stats?range=yesterday"))
        .await;
    assert_eq!(tile(&yesterday.text, "tile-issued"), "0");
}

#[actix_web::test]
async fn deleting_a_site_says_so_on_the_list() {
    let app = spawn_app().await;
    let mut browser = logged_in(&app).await;
    let (id, _) = create_site(&mut browser, "Contact", &app.receiver.url()).await;
    let deleted = browser
        .submit(
            &format!("/sites/{id}/delete"),
            &format!("/sites/{id}/delete"),
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(location(&deleted), "/dashboard?deleted=1");
    let list = browser.get("/dashboard?deleted=1").await;
    assert!(list.text.contains("id=\"deleted-notice\""));
    assert!(
        !browser
            .get("/dashboard")
            .await
            .text
            .contains("deleted-notice")
    );
}
