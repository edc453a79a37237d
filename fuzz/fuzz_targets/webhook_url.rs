//! Webhook URLs: an accepted URL is http(s), has a host, has no user-info, is at most 2048
//! bytes, and parses again to itself; its literal host, if any, can be judged by the policy.
#![no_main]

use caputchin_forwarder::egress::policy::{EgressPolicy, literal_host};
use caputchin_forwarder::egress::webhook_url::WebhookUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let Ok(url) = WebhookUrl::parse(&raw) else {
        return;
    };
    let parsed = url.url();
    assert!(matches!(parsed.scheme(), "http" | "https"));
    assert!(parsed.host_str().is_some_and(|host| !host.is_empty()));
    assert!(parsed.username().is_empty() && parsed.password().is_none());
    assert!(url.expose().len() <= 2048);
    assert!(raw.trim().len() <= 2048);
    assert_eq!(
        WebhookUrl::parse(url.expose()).as_ref(),
        Ok(&url),
        "not idempotent"
    );
    let masked = url.masked();
    assert!(masked.len() <= url.expose().len() + 4);
    if let Some(ip) = parsed.host().as_ref().and_then(literal_host) {
        let _ = EgressPolicy::default().check(ip);
    }
});
