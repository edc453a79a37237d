//! The email destination (SPEC §10) against a real SMTP relay on loopback: the message a
//! submission becomes, what never reaches a header, every failure category, both destinations
//! together, the settings and site rules, secrecy in logs and on disk, and connection reuse.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use caputchin_forwarder::clock::Clock as _;
use caputchin_forwarder::config::Settings;
use caputchin_forwarder::delivery::email::MAX_BUSY_PER_THREAD;
use caputchin_forwarder::delivery::{Destination, Outcome, Report};
use caputchin_forwarder::relay::{MailSettings, SmtpRelay, parse_sender};
use caputchin_forwarder::tls::ExtraRoots;
use serde_json::Value;

use crate::cli::{self, LogFormat};
use crate::helpers::{TestApp, site_input, spawn_app_with};
use crate::receiver::Behavior;
use crate::smtp::{ClosingRelay, Protection, SilentRelay, SmtpServer, TestCa, unused_port};

const FROM: &str = "Forms <forms@example.test>";
const USER: &str = "relay-user";
const PASSWORD: &str = "pw-7c41e9-relay-secret";
const WAIT: Duration = Duration::from_secs(10);

/// The relay most tests use: STARTTLS with a certificate from the test CA, AUTH required.
fn starttls_relay(ca: &TestCa) -> SmtpServer {
    SmtpServer::builder()
        .tls(Protection::StartTls, &ca.leaf_cert, &ca.leaf_key)
        .auth(USER, PASSWORD)
        .start()
}

fn mail_settings(url: &str) -> MailSettings {
    MailSettings {
        relay: SmtpRelay::parse(url).unwrap(),
        from: parse_sender(FROM).unwrap(),
    }
}

/// An app sending email through `url`, trusting the test CA when `ca` is given; loopback
/// webhooks are allowed.
async fn mail_app(
    url: &str,
    ca: Option<&TestCa>,
    configure: impl FnOnce(&mut Settings),
) -> TestApp {
    let mail = mail_settings(url);
    let roots = ca.map(|ca| ExtraRoots::read(&ca.ca_pem).unwrap());
    spawn_app_with(move |s| {
        s.egress_allow = vec!["127.0.0.0/8".parse().unwrap()];
        s.mail = Some(mail);
        s.tls_extra_roots = roots;
        configure(s);
    })
    .await
}

/// A site with no webhook, emailing these addresses; returns its key.
fn email_site(app: &TestApp, name: &str, to: &[&str]) -> String {
    let mut input = site_input(name);
    input.webhook_url = String::new();
    input.email_to = to.iter().map(|a| (*a).to_owned()).collect();
    app.create_site(&input).site_key.as_str().to_owned()
}

/// Posts a verified form (the token added last) and returns the answer.
async fn submit(app: &TestApp, key: &str, fields: &[(&str, &str)]) -> crate::helpers::Answer {
    let token = app.solve_token(key).await;
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("caputchin-token", &token));
    app.post_form(key, &all).await
}

/// Test delivery of the site, as the dashboard runs it.
async fn test_delivery(app: &TestApp, key: &str) -> caputchin_forwarder::delivery::Deliveries {
    let site = app.state.sites.get(key).unwrap();
    caputchin_forwarder::test_delivery::run(&app.state, &app.state.deliverer.client(), &site).await
}

async fn email_report(app: &TestApp, key: &str) -> Report {
    test_delivery(app, key)
        .await
        .get(Destination::Email)
        .unwrap()
        .clone()
}

fn position(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} not in:\n{haystack}"))
}

#[actix_web::test]
async fn an_email_only_site_gets_one_message_over_starttls_with_auth_listing_the_fields_in_order() {
    let ca = TestCa::new();
    let relay = starttls_relay(&ca);
    let app = mail_app(&relay.url(), Some(&ca), |_| {}).await;
    let key = email_site(&app, "Contact", &["one@example.test", "two@example.test"]);
    let webhook_site = app.create_receiving_site("Webhook");
    let webhook_key = webhook_site.site_key.as_str().to_owned();
    let token = app.solve_token(&key).await;

    let answer = app
        .post_form(
            &key,
            &[
                ("name", "Ada Lovelace"),
                ("email", "ada@visitor.test"),
                ("caputchin-token", &token),
                ("message", "<script>alert('x')</script>"),
                ("a-last-field", "zzz"),
            ],
        )
        .await;
    let webhook_answer = submit(&app, &webhook_key, &[("name", "Ada")]).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.status, webhook_answer.status);
    assert!(answer.text.contains("Thank you"), "{}", answer.text);
    assert_eq!(
        answer.text, webhook_answer.text,
        "the same answer as a webhook site"
    );
    let messages = relay.wait_for_messages(1, WAIT);
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.mail_from, "forms@example.test");
    assert_eq!(m.rcpt_tos, ["one@example.test", "two@example.test"]);
    for name in ["from", "to", "subject", "reply-to"] {
        let count = m.header_names().iter().filter(|n| *n == name).count();
        assert_eq!(count, 1, "{name} in {:?}", m.header_names());
    }
    assert_eq!(m.header_values("From"), ["Forms <forms@example.test>"]);
    assert_eq!(m.addresses("To"), ["one@example.test", "two@example.test"]);
    assert_eq!(m.header_values("Subject"), ["New submission — Contact"]);
    assert_eq!(m.addresses("Reply-To"), ["ada@visitor.test"]);

    let text = m.text();
    let html = m.html();
    for body in [&text, &html] {
        assert!(
            position(body, "name") < position(body, "Ada Lovelace")
                && position(body, "Ada Lovelace") < position(body, "ada@visitor.test")
                && position(body, "ada@visitor.test") < position(body, "message")
                && position(body, "message") < position(body, "a-last-field")
                && position(body, "a-last-field") < position(body, "zzz"),
            "fields in posted order:\n{body}"
        );
        assert!(!body.contains("caputchin-token"), "{body}");
        assert!(!body.contains(&token), "{body}");
        assert!(body.contains(&format!("Site: Contact ({key})")), "{body}");
        assert!(body.contains("Session: ses_"), "{body}");
        assert!(
            body.contains(&format!("({} ms since the epoch)", app.clock.now_ms())),
            "verified_at in the footer:\n{body}"
        );
    }
    assert!(
        text.contains("message:\n    <script>alert('x')</script>\n"),
        "{text}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>"), "{html}");
    assert_eq!(relay.connection_count(), 1);
}

#[actix_web::test]
async fn reply_to_is_set_only_when_the_visitor_email_is_one_valid_address() {
    let relay = SmtpServer::builder().start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);
    let cases: [Option<&str>; 6] = [
        None,
        Some("not an address"),
        Some("a@x.test, b@x.test"),
        Some("\"Boss\" <boss@x.test> extra stuff"),
        Some("ada@x.test\r\nBcc: evil@x.test"),
        Some("ada@x.test"),
    ];

    for (i, email) in cases.iter().enumerate() {
        let mut fields = vec![("message", "hi")];
        if let Some(email) = email {
            fields.push(("email", email));
        }
        let answer = submit(&app, &key, &fields).await;
        assert_eq!(answer.status, 200, "{email:?}: {}", answer.text);
        let m = relay.wait_for_messages(i + 1, WAIT).pop().unwrap();
        let reply_to = m.header_names().iter().filter(|n| *n == "reply-to").count();
        if *email == Some("ada@x.test") {
            assert_eq!(m.addresses("Reply-To"), ["ada@x.test"]);
        } else {
            assert_eq!(reply_to, 0, "{email:?}: {:?}", m.raw_header_lines());
        }
        assert!(m.header_names().iter().all(|n| n != "bcc"), "{email:?}");
        assert_eq!(m.rcpt_tos, ["owner@example.test"], "{email:?}");
    }
}

/// The header names lettre writes for a submission, and no other.
const HEADERS: [&str; 8] = [
    "from",
    "subject",
    "date",
    "message-id",
    "to",
    "mime-version",
    "content-type",
    "reply-to",
];

#[actix_web::test]
async fn crlf_in_field_names_values_and_the_site_name_adds_no_header() {
    let relay = SmtpServer::builder().start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let mut crlf_name = site_input("Contact\r\nBcc: evil-site@x.test");
    crlf_name.webhook_url = String::new();
    crlf_name.email_to = vec!["owner@example.test".into()];
    assert!(matches!(
        crlf_name.validate(),
        Err(caputchin_forwarder::sites::SiteError::InvalidName)
    ));
    // Line breaks that are not control characters get through to the subject, encoded.
    let key = email_site(
        &app,
        "Contact\u{2028}Bcc: evil-site@x.test\u{2029}Subject: Site-Injected",
        &["owner@example.test"],
    );
    let value = "hello\r\nBcc: evil-value@x.test\r\nSubject: Value-Injected\r\n\r\n<b>body</b>";
    let name = "field\r\nBcc: evil-name@x.test\nSubject: Name-Injected";

    let answer = submit(
        &app,
        &key,
        &[
            (name, value),
            ("email", "ok@x.test"),
            ("other", "\nBcc: lf-only@x.test"),
        ],
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let m = relay.wait_for_messages(1, WAIT).pop().unwrap();
    let mut names = m.header_names();
    names.sort_unstable();
    let mut expected = HEADERS.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{:#?}", m.raw_header_lines());
    let parsed_names: Vec<String> = m
        .parsed()
        .headers()
        .iter()
        .map(|h| h.name().to_ascii_lowercase())
        .collect();
    assert_eq!(parsed_names.len(), HEADERS.len(), "{parsed_names:?}");
    assert_eq!(m.rcpt_tos, ["owner@example.test"]);
    assert_eq!(m.addresses("To"), ["owner@example.test"]);
    assert_eq!(m.addresses("Reply-To"), ["ok@x.test"]);
    assert!(m.header_values("Bcc").is_empty());
    let subjects = m.header_values("Subject");
    assert_eq!(
        subjects,
        ["New submission — Contact\u{2028}Bcc: evil-site@x.test\u{2029}Subject: Site-Injected"]
    );
    let raw_head = m.raw_header_lines().join("\n");
    for injected in [
        "evil-value",
        "evil-name",
        "lf-only",
        "Value-Injected",
        "Name-Injected",
    ] {
        assert!(!raw_head.contains(injected), "{injected} in\n{raw_head}");
    }
    let text = m.text();
    let html = m.html();
    for body in [&text, &html] {
        for visible in [
            "Bcc: evil-value@x.test",
            "Subject: Value-Injected",
            "Bcc: evil-name@x.test",
            "Subject: Name-Injected",
            "Bcc: lf-only@x.test",
        ] {
            assert!(body.contains(visible), "{visible} not in\n{body}");
        }
    }
    assert!(text.contains("<b>body</b>"), "{text}");
    assert!(html.contains("&lt;b&gt;body&lt;/b&gt;"), "{html}");
    assert!(!html.contains("<b>body"), "{html}");
}

#[actix_web::test]
async fn non_ascii_and_long_values_arrive_intact() {
    let relay = SmtpServer::builder().start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Ünïcødé Café ☕", &["owner@example.test"]);
    let long: String = "0123456789abcdefghij".repeat(250);
    assert_eq!(long.len(), 5000);

    let answer = submit(
        &app,
        &key,
        &[("Ünïcødé 名前", "Zoë 名前 — ça va? 🎉🦀"), ("long", &long)],
    )
    .await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let m = relay.wait_for_messages(1, WAIT).pop().unwrap();
    assert_eq!(
        m.header_values("Subject"),
        ["New submission — Ünïcødé Café ☕"]
    );
    assert!(
        String::from_utf8_lossy(&m.raw)
            .lines()
            .all(|l| l.len() <= 998),
        "every line within RFC 5322's limit"
    );
    let text = m.text();
    let html = m.html();
    assert!(
        text.contains("Ünïcødé 名前:\n    Zoë 名前 — ça va? 🎉🦀\n"),
        "{text}"
    );
    assert!(text.contains(&format!("long:\n    {long}\n")));
    assert!(html.contains("Ünïcødé 名前</th>"), "{html}");
    assert!(html.contains("Zoë 名前 — ça va? 🎉🦀</td>"), "{html}");
    assert!(html.contains(&format!(">{long}</td>")));
}

/// A plain relay that offers PIPELINING and answers MAIL and RCPT only once DATA has arrived:
/// a client that waited for each reply (no pipelining) would stall until its deadline. With
/// `chunking` it offers CHUNKING too and answers MAIL, RCPT and BDAT only once BDAT's whole chunk
/// has arrived: a client that waited for any reply before sending the message would stall. Each
/// message is sent back as its held commands (the last one is the verb that carried it) and its
/// data as received.
fn strict_pipelining_relay(
    chunking: bool,
) -> (u16, std::sync::mpsc::Receiver<(Vec<String>, String)>) {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        let _ = out.write_all(b"220 strict.test ESMTP\r\n");
        let mut held = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" => {
                    let chunks = if chunking { "250-CHUNKING\r\n" } else { "" };
                    let _ = out.write_all(
                        format!("250-strict.test\r\n250-8BITMIME\r\n{chunks}250 PIPELINING\r\n")
                            .as_bytes(),
                    );
                }
                "MAIL" | "RCPT" => held.push(line.trim_end().to_owned()),
                "BDAT" if chunking => {
                    use std::io::Read as _;
                    let size: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
                    let mut data = Vec::new();
                    if (&mut lines).take(size).read_to_end(&mut data).unwrap_or(0) as u64 != size {
                        return;
                    }
                    let replies = "250 ok\r\n".repeat(held.len() + 1);
                    let _ = out.write_all(replies.as_bytes());
                    held.push(line.trim_end().to_owned());
                    let _ = tx.send((std::mem::take(&mut held), String::from_utf8(data).unwrap()));
                }
                "DATA" => {
                    let mut replies = "250 ok\r\n".repeat(held.len());
                    replies.push_str("354 go ahead\r\n");
                    let _ = out.write_all(replies.as_bytes());
                    let mut data = String::new();
                    loop {
                        line.clear();
                        if lines.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == ".\r\n" {
                            break;
                        }
                        data.push_str(&line);
                    }
                    let _ = out.write_all(b"250 2.0.0 queued\r\n");
                    held.push("DATA".to_owned());
                    let _ = tx.send((std::mem::take(&mut held), data));
                }
                _ => {
                    let _ = out.write_all(b"250 ok\r\n");
                }
            }
        }
    });
    (port, rx)
}

#[actix_web::test]
async fn with_a_relay_offering_pipelining_mail_rcpt_and_data_go_together() {
    let (port, sent) = strict_pipelining_relay(false);
    let app = mail_app(&format!("smtp://127.0.0.1:{port}/?tls=none"), None, |s| {
        s.delivery_timeout = Duration::from_secs(2);
    })
    .await;
    let key = email_site(&app, "Pipelined", &["a@example.test", "b@example.test"]);

    let answer = submit(&app, &key, &[("message", ".a line starting with a dot")]).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let (commands, data) = sent.recv_timeout(WAIT).unwrap();
    assert_eq!(
        commands,
        [
            "MAIL FROM:<forms@example.test>",
            "RCPT TO:<a@example.test>",
            "RCPT TO:<b@example.test>",
            "DATA"
        ]
    );
    assert!(data.contains("Subject: New submission"), "{data}");
    assert!(data.ends_with("\r\n"), "{data:?}");
}

#[actix_web::test]
async fn with_a_relay_offering_chunking_a_message_to_one_address_goes_in_one_write() {
    let (port, sent) = strict_pipelining_relay(true);
    let app = mail_app(&format!("smtp://127.0.0.1:{port}/?tls=none"), None, |s| {
        s.delivery_timeout = Duration::from_secs(2);
    })
    .await;
    let key = email_site(&app, "Chunked", &["owner@example.test"]);

    let first = submit(&app, &key, &[("message", ".a line starting with a dot")]).await;
    let second = submit(&app, &key, &[("message", "Grüße, second")]).await;

    assert_eq!((first.status, second.status), (200, 200), "{}", first.text);
    for expected in [".a line starting with a dot", "Gr=C3=BC=C3=9Fe, second"] {
        let (commands, data) = sent.recv_timeout(WAIT).unwrap();
        let size = data.len();
        assert_eq!(commands[1], "RCPT TO:<owner@example.test>", "{commands:?}");
        assert_eq!(commands[2], format!("BDAT {size} LAST"), "{commands:?}");
        assert!(commands[0].starts_with("MAIL FROM:<forms@example.test>"));
        assert_eq!(commands.len(), 3);
        // The chunk is the message itself: no dot-stuffing, no end-of-data line.
        assert!(data.contains(&format!("\r\n    {expected}\r\n")), "{data}");
        assert!(!data.contains("\r\n.\r\n"), "{data:?}");
        assert!(data.contains("Subject: New submission"), "{data}");
    }
}

#[actix_web::test]
async fn with_chunking_a_message_to_several_addresses_waits_for_every_rcpt() {
    let (port, sent) = strict_pipelining_relay(true);
    let app = mail_app(&format!("smtp://127.0.0.1:{port}/?tls=none"), None, |s| {
        s.delivery_timeout = Duration::from_secs(2);
    })
    .await;
    let key = email_site(&app, "Two", &["a@example.test", "b@example.test"]);

    let answer = submit(&app, &key, &[("message", "hello")]).await;

    assert_eq!(answer.status, 200, "{}", answer.text);
    let (commands, _) = sent.recv_timeout(WAIT).unwrap();
    assert_eq!(
        commands.last().map(String::as_str),
        Some("DATA"),
        "{commands:?}"
    );
}

#[actix_web::test]
async fn a_chunking_relay_gets_each_message_by_bdat_and_its_refusals_are_categorised() {
    let relay = SmtpServer::builder().chunking().start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Chunks", &["owner@example.test"]);
    let long = "x".repeat(3000);
    let fields = [
        ("name", "Zoë"),
        ("message", ".starts with a dot\n..and two"),
        ("long", long.as_str()),
    ];

    let first = submit(&app, &key, &fields).await;
    let second = submit(&app, &key, &[("message", "second")]).await;

    assert_eq!((first.status, second.status), (200, 200), "{}", first.text);
    let messages = relay.wait_for_messages(2, WAIT);
    assert_eq!(
        messages.iter().map(|m| m.via.as_str()).collect::<Vec<_>>(),
        ["BDAT", "BDAT"]
    );
    assert_eq!(messages[0].rcpt_tos, ["owner@example.test"]);
    let text = messages[0].text();
    assert!(text.contains("name:\n    Zoë\n"), "{text}");
    assert!(
        text.contains("message:\n    .starts with a dot\n    ..and two\n"),
        "{text}"
    );
    assert!(text.contains(&format!("long:\n    {long}\n")));
    assert!(messages[1].text().contains("second"));
    // Kept connections carried them: at most one per worker thread.
    assert!(
        relay.connection_count() <= 2,
        "{}",
        relay.connection_count()
    );

    for (relay, outcome, code) in [
        (
            SmtpServer::builder().chunking().reply_rcpt(550).start(),
            Outcome::Smtp5xx,
            550,
        ),
        (
            SmtpServer::builder().chunking().reply_data(451).start(),
            Outcome::Smtp4xx,
            451,
        ),
    ] {
        let app = mail_app(&relay.url(), None, |_| {}).await;
        let key = email_site(&app, "Refused", &["owner@example.test"]);
        let report = email_report(&app, &key).await;
        assert_eq!(
            (report.outcome, report.smtp_code),
            (outcome, Some(code)),
            "{report:?}"
        );
        assert!(relay.messages().is_empty());
    }
}

#[actix_web::test]
async fn a_relay_without_pipelining_gets_one_command_at_a_time() {
    let relay = SmtpServer::builder().no_pipelining().start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "One at a time", &["owner@example.test"]);

    let first = submit(&app, &key, &[("message", "first")]).await;
    let second = submit(&app, &key, &[("message", ".second, after a dot")]).await;

    assert_eq!((first.status, second.status), (200, 200), "{}", second.text);
    let messages = relay.wait_for_messages(2, WAIT);
    assert_eq!(messages.len(), 2);
    assert!(messages[1].text().contains(".second, after a dot"));
}

#[actix_web::test]
async fn a_451_at_data_is_smtp_4xx_with_the_relays_code_and_reply() {
    let relay = SmtpServer::builder().reply_data(451).start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);

    let report = email_report(&app, &key).await;

    assert_eq!(report.outcome, Outcome::Smtp4xx, "{report:?}");
    assert_eq!(report.smtp_code, Some(451));
    let reply = report.smtp_reply.clone().unwrap_or_default();
    assert!(
        reply.contains("message refused by the test relay"),
        "{report:?}"
    );
    assert!(relay.messages().is_empty());
    // A real submission to a site with only this destination is not "sent".
    let answer = submit(&app, &key, &[("message", "hi")]).await;
    assert_eq!(answer.status, 502, "{}", answer.text);
    assert!(answer.text.contains("delivery-failed"));
}

#[actix_web::test]
async fn a_550_at_rcpt_is_smtp_5xx() {
    let relay = SmtpServer::builder().reply_rcpt(550).start();
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);

    let report = email_report(&app, &key).await;

    assert_eq!(report.outcome, Outcome::Smtp5xx, "{report:?}");
    assert_eq!(report.smtp_code, Some(550));
    assert!(
        report
            .smtp_reply
            .as_deref()
            .unwrap_or_default()
            .contains("recipient refused by the test relay"),
        "{report:?}"
    );
}

#[actix_web::test]
async fn a_relay_that_never_greets_is_a_timeout_within_the_delivery_timeout() {
    let relay = SilentRelay::start();
    let app = mail_app(&relay.url(), None, |s| {
        s.delivery_timeout = Duration::from_millis(600);
    })
    .await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);

    let started = Instant::now();
    let report = email_report(&app, &key).await;
    let elapsed = started.elapsed();

    assert_eq!(report.outcome, Outcome::Timeout, "{report:?}");
    assert!(elapsed >= Duration::from_millis(600), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(600 + 700), "{elapsed:?}");
    assert_eq!(relay.connection_count(), 1);
}

#[actix_web::test]
async fn a_relay_that_stalls_after_the_message_is_a_timeout_within_the_delivery_timeout() {
    let relay = SmtpServer::builder().delay_data_ms(3000).start();
    let app = mail_app(&relay.url(), None, |s| {
        s.delivery_timeout = Duration::from_millis(600);
    })
    .await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);

    let started = Instant::now();
    let report = email_report(&app, &key).await;
    let elapsed = started.elapsed();

    assert_eq!(report.outcome, Outcome::Timeout, "{report:?}");
    assert!(elapsed < Duration::from_millis(600 + 700), "{elapsed:?}");
}

#[actix_web::test]
async fn a_relay_that_closes_at_once_and_a_closed_port_are_connect() {
    let closing = ClosingRelay::start();
    let nothing = format!("smtp://127.0.0.1:{}?tls=none", unused_port());
    for url in [closing.url(), nothing] {
        let app = mail_app(&url, None, |_| {}).await;
        let key = email_site(&app, "Contact", &["owner@example.test"]);

        let report = email_report(&app, &key).await;

        assert_eq!(report.outcome, Outcome::Connect, "{url}: {report:?}");
        assert_eq!(report.smtp_code, None);
    }
}

#[actix_web::test]
async fn a_self_signed_relay_certificate_is_tls() {
    let ca = TestCa::new();
    for tls in [Protection::StartTls, Protection::Implicit] {
        let relay = SmtpServer::builder()
            .tls(tls, &ca.self_signed_cert, &ca.self_signed_key)
            .auth(USER, PASSWORD)
            .start();
        let app = mail_app(&relay.url(), Some(&ca), |_| {}).await;
        let key = email_site(&app, "Contact", &["owner@example.test"]);

        let report = email_report(&app, &key).await;

        assert_eq!(report.outcome, Outcome::Tls, "{tls:?}: {report:?}");
        assert!(relay.messages().is_empty());
    }
}

#[actix_web::test]
async fn a_relay_under_a_private_ca_is_tls_without_the_extra_roots_and_delivered_with_them() {
    let ca = TestCa::new();
    for tls in [Protection::StartTls, Protection::Implicit] {
        let relay = SmtpServer::builder()
            .tls(tls, &ca.leaf_cert, &ca.leaf_key)
            .auth(USER, PASSWORD)
            .start();
        let without = mail_app(&relay.url(), None, |_| {}).await;
        let with = mail_app(&relay.url(), Some(&ca), |_| {}).await;
        let key_without = email_site(&without, "Contact", &["owner@example.test"]);
        let key_with = email_site(&with, "Contact", &["owner@example.test"]);

        let refused = email_report(&without, &key_without).await;
        let accepted = email_report(&with, &key_with).await;

        assert_eq!(refused.outcome, Outcome::Tls, "{tls:?}: {refused:?}");
        assert_eq!(
            accepted.outcome,
            Outcome::Delivered,
            "{tls:?}: {accepted:?}"
        );
        assert_eq!(accepted.smtp_code, Some(250));
        let m = relay.wait_for_messages(1, WAIT);
        assert_eq!(m.len(), 1, "{tls:?}");
        assert!(
            m[0].header_values("Subject")[0].starts_with("[Test] New submission — Contact"),
            "{:?}",
            m[0].header_values("Subject")
        );
    }
}

#[actix_web::test]
async fn a_wrong_password_is_auth() {
    let ca = TestCa::new();
    let relay = starttls_relay(&ca);
    let url = relay.url_with_credentials(&format!("{USER}:not-the-password@"));
    let app = mail_app(&url, Some(&ca), |_| {}).await;
    let key = email_site(&app, "Contact", &["owner@example.test"]);

    let report = email_report(&app, &key).await;

    assert_eq!(report.outcome, Outcome::Auth, "{report:?}");
    assert!(!report.detail.contains("not-the-password"), "{report:?}");
    assert!(relay.messages().is_empty());
}

#[actix_web::test]
async fn with_both_destinations_the_visitor_is_told_sent_when_one_accepts() {
    let ca = TestCa::new();
    let refusing = SmtpServer::builder()
        .tls(Protection::StartTls, &ca.leaf_cert, &ca.leaf_key)
        .auth(USER, PASSWORD)
        .reply_rcpt(550)
        .start();
    let accepting = starttls_relay(&ca);
    let failing_mail = mail_app(&refusing.url(), Some(&ca), |_| {}).await;
    let working_mail = mail_app(&accepting.url(), Some(&ca), |_| {}).await;
    let both = |app: &TestApp| {
        let mut input = site_input("Both");
        input.webhook_url = app.receiver.url();
        input.email_to = vec!["owner@example.test".into()];
        app.create_site(&input).site_key.as_str().to_owned()
    };
    let failing_key = both(&failing_mail);
    let working_key = both(&working_mail);

    // Webhook accepts, email refused: sent.
    let sent = submit(&failing_mail, &failing_key, &[("message", "one")]).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(failing_mail.receiver.requests().len(), 1);
    let deliveries = test_delivery(&failing_mail, &failing_key).await;
    assert_eq!(
        deliveries.get(Destination::Webhook).unwrap().outcome,
        Outcome::Delivered
    );
    assert_eq!(
        deliveries.get(Destination::Email).unwrap().outcome,
        Outcome::Smtp5xx
    );
    assert!(deliveries.accepted());

    // Both fail: refused with the spec's code.
    failing_mail.receiver.set(Behavior {
        status: 500,
        ..Behavior::default()
    });
    let refused = submit(&failing_mail, &failing_key, &[("message", "two")]).await;
    assert_eq!(refused.status, 502, "{}", refused.text);
    assert!(refused.text.contains("delivery-failed"), "{}", refused.text);
    let deliveries = test_delivery(&failing_mail, &failing_key).await;
    assert_eq!(
        deliveries.get(Destination::Webhook).unwrap().outcome,
        Outcome::Http5xx
    );
    assert!(!deliveries.accepted());
    assert!(refusing.messages().is_empty());

    // Webhook fails, email accepted: sent.
    working_mail.receiver.set(Behavior {
        status: 500,
        ..Behavior::default()
    });
    let sent = submit(&working_mail, &working_key, &[("message", "three")]).await;
    assert_eq!(sent.status, 200, "{}", sent.text);
    assert_eq!(working_mail.receiver.requests().len(), 1);
    let m = accepting.wait_for_messages(1, WAIT);
    assert!(m[0].text().contains("three"));
    let deliveries = test_delivery(&working_mail, &working_key).await;
    assert_eq!(
        deliveries.get(Destination::Email).unwrap().outcome,
        Outcome::Delivered
    );
    assert_eq!(
        deliveries.get(Destination::Webhook).unwrap().outcome,
        Outcome::Http5xx
    );
}

#[actix_web::test]
async fn twenty_concurrent_submissions_arrive_over_a_few_connections() {
    let ca = TestCa::new();
    // Slow enough at DATA that the submissions overlap at the relay.
    let relay = SmtpServer::builder()
        .tls(Protection::StartTls, &ca.leaf_cert, &ca.leaf_key)
        .auth(USER, PASSWORD)
        .delay_data_ms(50)
        .start();
    let app = mail_app(&relay.url(), Some(&ca), |_| {}).await;
    let key = email_site(&app, "Burst", &["owner@example.test"]);
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.solve_token(&key).await);
    }

    let posts = tokens.iter().enumerate().map(|(i, token)| {
        let app = &app;
        let key = &key;
        async move {
            let n = format!("burst-{i:02}");
            app.post_form(key, &[("n", &n), ("caputchin-token", token)])
                .await
        }
    });
    let answers = futures_util::future::join_all(posts).await;

    assert!(answers.iter().all(|a| a.status == 200));
    let messages = relay.wait_for_messages(20, WAIT);
    assert_eq!(messages.len(), 20);
    let mut seen: Vec<String> = messages
        .iter()
        .map(|m| {
            let text = m.text();
            let at = position(&text, "burst-");
            text[at..at + 8].to_owned()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "each submission once");
    // One actix worker per core, each with its own few connections.
    let workers = std::thread::available_parallelism().unwrap().get();
    let connections = relay.connection_count();
    assert!(
        connections <= (MAX_BUSY_PER_THREAD * workers).min(10),
        "{connections} connections for 20 messages ({workers} workers)"
    );
}

/// One message as [`BatchRelay`] queued it.
#[derive(Debug, Clone)]
struct Queued {
    /// Its commands (RSET, MAIL, RCPT and BDAT lines) since the previous message.
    commands: Vec<String>,
    data: String,
    /// More commands had already arrived when its chunk ended: it was written with others.
    behind: bool,
    /// The relay had refused an earlier message on this connection.
    after_a_refusal: bool,
}

/// A plain relay offering PIPELINING and CHUNKING, a thread per connection, that holds every
/// connection's first replies for `hold` (so that messages queue up behind the first) and is as
/// strict as RFC 5321 allows: a MAIL while a transaction is open is refused (only a queued
/// message or RSET ends one; a BDAT refused for want of recipients does not), and an address
/// with "refused" in it is refused.
struct BatchRelay {
    port: u16,
    queued: std::sync::Arc<std::sync::Mutex<Vec<Queued>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl BatchRelay {
    fn start(hold: Duration) -> BatchRelay {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let queued = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (log, count) = (queued.clone(), connections.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                count.fetch_add(1, Ordering::SeqCst);
                let log = log.clone();
                std::thread::spawn(move || BatchRelay::session(stream, hold, &log));
            }
        });
        BatchRelay {
            port,
            queued,
            connections,
        }
    }

    fn session(stream: std::net::TcpStream, hold: Duration, log: &std::sync::Mutex<Vec<Queued>>) {
        use std::io::{BufRead as _, BufReader, Read as _, Write as _};
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::with_capacity(1 << 20, stream);
        let mut replies = String::from("220 batch.test ESMTP\r\n");
        let (mut open, mut recipients, mut refused_before) = (false, 0, false);
        let mut commands = Vec::new();
        let mut held = false;
        let mut line = String::new();
        loop {
            if lines.buffer().is_empty() && !replies.is_empty() {
                if !held && commands.iter().any(|c: &String| c.starts_with("BDAT")) {
                    std::thread::sleep(hold);
                    held = true;
                }
                if out.write_all(replies.as_bytes()).is_err() {
                    return;
                }
                replies.clear();
            }
            line.clear();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let command = line.trim_end().to_owned();
            let verb = command.get(..4).unwrap_or("").to_ascii_uppercase();
            if ["RSET", "MAIL", "RCPT", "BDAT"].contains(&verb.as_str()) {
                commands.push(command.clone());
            }
            match verb.as_str() {
                "EHLO" => replies.push_str(
                    "250-batch.test\r\n250-8BITMIME\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
                ),
                "RSET" => {
                    (open, recipients) = (false, 0);
                    replies.push_str("250 2.0.0 ok\r\n");
                }
                "MAIL" if open => replies.push_str("503 5.5.1 nested MAIL command\r\n"),
                "MAIL" => {
                    open = true;
                    replies.push_str("250 2.1.0 ok\r\n");
                }
                "RCPT" if !open => replies.push_str("503 5.5.1 need MAIL command\r\n"),
                "RCPT" if command.contains("refused") => {
                    refused_before = true;
                    replies.push_str("550 5.1.1 no such user here\r\n");
                }
                "RCPT" => {
                    recipients += 1;
                    replies.push_str("250 2.1.5 ok\r\n");
                }
                "BDAT" => {
                    let size: u64 = command.split_whitespace().nth(1).unwrap().parse().unwrap();
                    let mut data = Vec::new();
                    if (&mut lines).take(size).read_to_end(&mut data).unwrap_or(0) as u64 != size {
                        return;
                    }
                    if !open || recipients == 0 {
                        replies.push_str("554 5.5.1 no valid recipients\r\n");
                        continue;
                    }
                    log.lock().unwrap().push(Queued {
                        commands: std::mem::take(&mut commands),
                        data: String::from_utf8(data).unwrap(),
                        behind: !lines.buffer().is_empty(),
                        after_a_refusal: refused_before,
                    });
                    (open, recipients) = (false, 0);
                    replies.push_str("250 2.0.0 queued\r\n");
                }
                "QUIT" => {
                    let _ = out.write_all(format!("{replies}221 bye\r\n").as_bytes());
                    return;
                }
                _ => replies.push_str("250 ok\r\n"),
            }
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}/?tls=none", self.port)
    }

    fn queued(&self) -> Vec<Queued> {
        self.queued.lock().unwrap().clone()
    }
}

/// Posts to the sites, all at once, each with a fresh token and a field `n` naming it.
async fn post_all_at_once(app: &TestApp, keys: &[&str]) -> Vec<crate::helpers::Answer> {
    let mut tokens = Vec::new();
    for key in keys {
        tokens.push(app.solve_token(key).await);
    }
    let posts = keys
        .iter()
        .zip(&tokens)
        .enumerate()
        .map(|(i, (key, token))| async move {
            let n = format!("burst-{i:02}");
            app.post_form(key, &[("n", &n), ("caputchin-token", token)])
                .await
        });
    futures_util::future::join_all(posts).await
}

#[actix_web::test]
async fn a_burst_to_a_chunking_relay_shares_writes_and_each_message_arrives_once() {
    let relay = BatchRelay::start(Duration::from_millis(300));
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let key = email_site(&app, "Burst", &["owner@example.test"]);

    let answers = post_all_at_once(&app, &[key.as_str(); 20]).await;

    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200; 20]);
    let queued = relay.queued();
    let mut seen: Vec<String> = queued
        .iter()
        .map(|q| {
            let at = position(&q.data, "burst-");
            q.data[at..at + 8].to_owned()
        })
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!((queued.len(), seen.len()), (20, 20), "each submission once");
    // Those that waited while the relay held its replies went together, several per write.
    let behind = queued.iter().filter(|q| q.behind).count();
    assert!(
        behind >= 8,
        "{behind} of 20 written behind another: {queued:#?}"
    );
    // Every transaction after the first of a write starts with RSET.
    let with_rset = queued.iter().filter(|q| q.commands[0] == "RSET").count();
    assert!(
        with_rset >= behind,
        "{with_rset} with RSET, {behind} behind"
    );
    let workers = std::thread::available_parallelism().unwrap().get();
    let connections = relay.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        connections <= MAX_BUSY_PER_THREAD * workers,
        "{connections} connections"
    );
}

#[actix_web::test]
async fn in_a_shared_write_each_message_gets_its_own_outcome() {
    let relay = BatchRelay::start(Duration::from_millis(300));
    let app = mail_app(&relay.url(), None, |_| {}).await;
    let good = email_site(&app, "Good", &["owner@example.test"]);
    let bad = email_site(&app, "Bad", &["refused@example.test"]);
    // Two by two: the server's workers take connections in turn, so each gets both sites.
    let good_at = |i: usize| (i / 2).is_multiple_of(2);
    let keys: Vec<&str> = (0..16)
        .map(|i| {
            if good_at(i) {
                good.as_str()
            } else {
                bad.as_str()
            }
        })
        .collect();

    let answers = post_all_at_once(&app, &keys).await;

    for (i, answer) in answers.iter().enumerate() {
        let expected = if good_at(i) { 200 } else { 502 };
        assert_eq!(answer.status, expected, "post {i}: {}", answer.text);
    }
    let queued = relay.queued();
    assert_eq!(queued.len(), 8, "{queued:#?}");
    assert!(
        queued
            .iter()
            .all(|q| q.data.contains("To: owner@example.test")),
        "{queued:#?}"
    );
    // Some were written behind a refused one, on the same connection, and still went.
    assert!(queued.iter().any(|q| q.after_a_refusal), "{queued:#?}");
}

// The binary: site rules, settings, secrecy.

fn mail_env(url: &str) -> [(&'static str, String); 2] {
    [
        ("CAPUTCHIN_SMTP_URL", url.to_owned()),
        ("CAPUTCHIN_MAIL_FROM", FROM.to_owned()),
    ]
}

fn create_email_site(dir: &Path, env: &[(&str, String)], to: &[&str]) -> std::process::Output {
    let mut cmd = cli::cli(dir);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    cmd.args([
        "site",
        "create",
        "--account",
        "owner@example.com",
        "--name",
        "Mail",
        "--challenges",
        "2",
        "--difficulty",
        "1",
        "--json",
    ]);
    for a in to {
        cmd.args(["--email-to", a]);
    }
    cli::run(&mut cmd)
}

#[test]
fn email_addresses_are_refused_without_a_relay_and_when_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(cli::create_account(d, "owner@example.com").status.success());
    let env = mail_env("smtp://127.0.0.1:1?tls=none");

    let no_relay = create_email_site(d, &[], &["a@x.test"]);
    let invalid = create_email_site(d, &env, &["not-an-address"]);
    let six = create_email_site(
        d,
        &env,
        &[
            "a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test", "f@x.test",
        ],
    );
    let five = create_email_site(
        d,
        &env,
        &["a@x.test", "b@x.test, c@x.test", "d@x.test\ne@x.test"],
    );

    assert!(!no_relay.status.success());
    let e = cli::stderr(&no_relay);
    assert!(
        e.contains("CAPUTCHIN_SMTP_URL") && e.contains("CAPUTCHIN_MAIL_FROM"),
        "{e}"
    );
    assert!(!invalid.status.success());
    let e = cli::stderr(&invalid);
    assert!(
        e.contains("\"not-an-address\" is not an email address"),
        "{e}"
    );
    assert!(!six.status.success());
    assert!(
        cli::stderr(&six).contains("at most 5 email addresses"),
        "{}",
        cli::stderr(&six)
    );
    assert!(five.status.success(), "{}", cli::stderr(&five));
    let listed = cli::run(cli::cli(d).args(["site", "list", "--json"]));
    let listed: Value = serde_json::from_str(cli::stdout(&listed).trim()).unwrap();
    let sites = listed["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 1, "{listed}");
    assert_eq!(
        sites[0]["email_to"],
        serde_json::json!(["a@x.test", "b@x.test", "c@x.test", "d@x.test", "e@x.test"])
    );
}

#[test]
fn bad_mail_settings_exit_2_naming_the_variable_and_never_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let not_pem = d.join("roots.pem");
    std::fs::write(&not_pem, "this is not a certificate\n").unwrap();
    let not_pem = not_pem.to_str().unwrap().to_owned();
    let secret = "pw-93b1-never-shown";
    let url = format!("smtp://user:{secret}@127.0.0.1:2525");
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            vec![
                ("CAPUTCHIN_SMTP_URL", format!("ftp://user:{secret}@x")),
                ("CAPUTCHIN_MAIL_FROM", FROM.into()),
            ],
            "CAPUTCHIN_SMTP_URL",
        ),
        (
            vec![
                ("CAPUTCHIN_SMTP_URL", "smtp://".into()),
                ("CAPUTCHIN_MAIL_FROM", FROM.into()),
            ],
            "CAPUTCHIN_SMTP_URL",
        ),
        (
            vec![("CAPUTCHIN_SMTP_URL", url.clone())],
            "CAPUTCHIN_MAIL_FROM",
        ),
        (
            vec![
                ("CAPUTCHIN_SMTP_URL", format!("{url}?tls=maybe")),
                ("CAPUTCHIN_MAIL_FROM", FROM.into()),
            ],
            "CAPUTCHIN_SMTP_URL",
        ),
        (
            vec![
                ("CAPUTCHIN_SMTP_URL", url.clone()),
                ("CAPUTCHIN_MAIL_FROM", "not a sender".into()),
            ],
            "CAPUTCHIN_MAIL_FROM",
        ),
        (
            vec![("CAPUTCHIN_TLS_EXTRA_ROOTS", not_pem)],
            "CAPUTCHIN_TLS_EXTRA_ROOTS",
        ),
    ];
    for (env, variable) in cases {
        let mut cmd = cli::cli(d);
        cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
        let out = cli::run(cmd.arg("migrate"));
        let (o, e) = (cli::stdout(&out), cli::stderr(&out));
        assert_eq!(out.status.code(), Some(2), "{env:?}: {e}");
        assert!(e.contains(variable), "{env:?}: {e}");
        assert!(!e.contains(secret) && !o.contains(secret), "{env:?}: {e}");
    }
    let help = cli::stdout(&cli::run(cli::cli(d).arg("--help")));
    for variable in [
        "CAPUTCHIN_SMTP_URL",
        "CAPUTCHIN_MAIL_FROM",
        "CAPUTCHIN_TLS_EXTRA_ROOTS",
    ] {
        assert!(help.contains(variable), "--help lacks {variable}");
    }
}

#[test]
fn site_test_json_reports_the_relays_code_and_reply_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let relay = SmtpServer::builder().reply_data(451).start();
    let env = mail_env(&relay.url());
    assert!(cli::create_account(d, "owner@example.com").status.success());
    let created = create_email_site(d, &env, &["owner@example.test"]);
    assert!(created.status.success(), "{}", cli::stderr(&created));
    let site: Value = serde_json::from_str(cli::stdout(&created).trim()).unwrap();
    let key = site["site_key"].as_str().unwrap();

    let mut cmd = cli::cli(d);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let out = cli::run(cmd.args(["site", "test", key, "--json"]));

    assert!(!out.status.success());
    let report: Value = serde_json::from_str(cli::stdout(&out).trim()).unwrap();
    let deliveries = report["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{report}");
    assert_eq!(deliveries[0]["destination"], "email");
    assert_eq!(deliveries[0]["outcome"], "smtp-4xx");
    assert_eq!(deliveries[0]["smtp_code"], 451);
    assert!(
        deliveries[0]["smtp_reply"]
            .as_str()
            .unwrap_or_default()
            .contains("message refused by the test relay"),
        "{report}"
    );
}

#[actix_web::test]
async fn relay_credentials_and_form_contents_never_reach_the_logs_or_the_database() {
    relay_secrets_stay_out(LogFormat::Text).await;
}

#[actix_web::test]
async fn relay_credentials_and_form_contents_never_reach_the_json_logs_or_the_database() {
    relay_secrets_stay_out(LogFormat::Json).await;
}

async fn relay_secrets_stay_out(format: LogFormat) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ca = TestCa::new();
    let relay = starttls_relay(&ca);
    let mut env = mail_env(&relay.url()).to_vec();
    env.push((
        "CAPUTCHIN_TLS_EXTRA_ROOTS",
        ca.ca_pem.to_str().unwrap().to_owned(),
    ));
    assert!(cli::create_account(d, "owner@example.com").status.success());
    let created = create_email_site(d, &env, &["owner@example.test"]);
    assert!(created.status.success(), "{}", cli::stderr(&created));
    let site: Value = serde_json::from_str(cli::stdout(&created).trim()).unwrap();
    let key = site["site_key"].as_str().unwrap().to_owned();
    let mut serve_env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    serve_env.push(format.env());
    serve_env.push(("RUST_LOG", "trace"));
    let (mut child, port, logs) = cli::serve(d, &serve_env);
    let base = format!("http://127.0.0.1:{port}");
    let marker = "MARKER-e41f-private-mail-value";
    let visitor = "visitor-8d2c@visitor.test";

    let token = cli::token_from(&base, &key).await;
    let res = awc::Client::builder()
        .disable_redirects()
        .finish()
        .post(format!("{base}/f/{key}"))
        .send_form(&[
            ("message", marker),
            ("email", visitor),
            ("caputchin-token", token.as_str()),
        ])
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let m = relay.wait_for_messages(1, WAIT);
    assert!(
        m[0].text().contains(marker),
        "the message did carry the marker"
    );
    let mut all = cli::drain(&mut child, &logs);
    let mut cmd = cli::cli(d);
    cmd.envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_LOG", "trace")
        .env(format.env().0, format.env().1);
    let test = cli::run(cmd.args(["site", "test", &key]));
    assert!(test.status.success(), "{}", cli::stderr(&test));
    relay.wait_for_messages(2, WAIT);
    all.push_str(&cli::stderr(&test));
    all.push_str(&cli::stdout(&test));
    format.assert_lines(&cli::stderr(&test));
    assert!(
        format.logged(&all, "outcome", "delivered"),
        "deliveries are logged:\n{all}"
    );

    let b64 = |s: &[u8]| base64::engine::general_purpose::STANDARD.encode(s);
    let plain = b64(format!("\0{USER}\0{PASSWORD}").as_bytes());
    let login = b64(PASSWORD.as_bytes());
    for needle in [
        PASSWORD,
        plain.as_str(),
        login.as_str(),
        marker,
        visitor,
        "New submission to",
        "Sent by Caputchin Forwarder",
        token.as_str(),
    ] {
        assert!(!all.contains(needle), "log contains {needle}:\n{all}");
    }
    let mut bytes = Vec::new();
    for suffix in ["", "-wal"] {
        if let Ok(b) = std::fs::read(format!("{}{suffix}", d.join("db/forwarder.db").display())) {
            bytes.extend(b);
        }
    }
    assert!(!bytes.is_empty());
    let stored = String::from_utf8_lossy(&bytes);
    for needle in [marker, visitor, PASSWORD, plain.as_str()] {
        assert!(!stored.contains(needle), "the database holds {needle}");
    }
    assert!(
        stored.contains("owner@example.test"),
        "the site row holds its address"
    );
}

#[actix_web::test]
async fn the_dashboard_refuses_email_addresses_without_a_relay_and_invalid_ones_next_to_the_field()
{
    let without = crate::helpers::spawn_app().await;
    let with = mail_app("smtp://127.0.0.1:1?tls=none", None, |_| {}).await;
    let six = "a@x.test\nb@x.test\nc@x.test, d@x.test\ne@x.test\nf@x.test";
    let cases = [
        (&without, "a@x.test", "CAPUTCHIN_SMTP_URL"),
        (&with, "not-an-address", "is not an email address"),
        (&with, six, "at most 5 email addresses"),
    ];

    for (app, email_to, message) in cases {
        let mut browser = crate::dashboard::logged_in(app).await;
        let mut fields = crate::dashboard::site_fields("Mail", "");
        fields.push(("email_to", email_to));
        let answer = browser.submit("/sites/new", "/sites", &fields).await;
        assert_eq!(answer.status, 422, "{email_to}: {}", answer.text);
        assert!(answer.text.contains("id=\"email-error\""), "{email_to}");
        // The dashboard shows the rule as a sentence, capitalised.
        assert!(
            answer.text.to_lowercase().contains(&message.to_lowercase()),
            "{email_to}: {}",
            answer.text
        );
        assert_eq!(app.db_count("SELECT COUNT(*) FROM sites"), 0, "{email_to}");
    }
    let mut browser = crate::dashboard::logged_in(&with).await;
    let mut fields = crate::dashboard::site_fields("Mail", "");
    fields.push(("email_to", "a@x.test\nb@x.test, c@x.test"));
    let created = browser.submit("/sites/new", "/sites", &fields).await;
    assert_eq!(created.status, 200, "{}", created.text);
    assert!(
        created
            .text
            .contains("a@x.test, b@x.test, c@x.test by email")
    );
    assert_eq!(with.db_count("SELECT COUNT(*) FROM sites"), 1);
}

#[actix_web::test]
async fn the_management_api_sets_both_destinations_and_tests_each_one() {
    let ca = TestCa::new();
    let relay = starttls_relay(&ca);
    let app = mail_app(&relay.url(), Some(&ca), |_| {}).await;
    let token = app.token(caputchin_forwarder::access_tokens::Scope::Write, None);
    let created = app
        .provider(
            "POST",
            "/v1/management/sites",
            &token,
            Some(r#"{"name":"Both"}"#),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["site"]["id"].as_str().unwrap().to_owned();
    let hv = format!("/v1/management/hosted-verification/{id}");
    // Two addresses in one string, as Caputchin holds one: echoed exactly as sent.
    let email_to = "Owner@Example.test, second@example.test";
    let body = format!(
        r#"{{"email_to":"{email_to}","enabled":true,"webhook_url":"{}"}}"#,
        app.receiver.url()
    );
    let saved = app.provider("PUT", &hv, &token, Some(&body)).await;
    assert_eq!(saved.status, 200, "{}", saved.text);
    assert_eq!(saved.json["email_to"], email_to);
    let read = app.provider("GET", &hv, &token, None).await;
    assert_eq!(read.json["email_to"], email_to);

    let tested = app
        .provider("POST", &format!("{hv}/test"), &token, Some("{}"))
        .await;
    assert_eq!(tested.status, 200, "{}", tested.text);
    let results = tested.json["destinations"].as_array().unwrap();
    let names: Vec<&str> = results
        .iter()
        .map(|r| r["destination"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["webhook", "email"], "{}", tested.text);
    for result in results {
        assert_eq!(result["ok"], true, "{result}");
        assert_eq!(result["outcome"], "delivered", "{result}");
    }
    assert_eq!(results[0]["http_status"], 200);
    assert_eq!(results[1]["smtp_code"], 250);
    let messages = relay.wait_for_messages(1, WAIT);
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].header_values("Subject")[0].starts_with("[Test] New submission — Both"),
        "{:?}",
        messages[0].header_values("Subject")
    );
    assert_eq!(
        app.receiver.requests()[0].header("x-caputchin-test"),
        Some("1")
    );

    // Removing the webhook with null leaves the email destination.
    let body = format!(r#"{{"email_to":"{email_to}","enabled":true,"webhook_url":null}}"#);
    let saved = app.provider("PUT", &hv, &token, Some(&body)).await;
    assert_eq!(saved.json["webhook_url"], serde_json::Value::Null);
    let tested = app
        .provider("POST", &format!("{hv}/test"), &token, None)
        .await;
    assert_eq!(tested.json["destinations"].as_array().unwrap().len(), 1);
    assert_eq!(tested.json["destinations"][0]["destination"], "email");
}
