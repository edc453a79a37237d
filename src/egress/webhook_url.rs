//! `WebhookUrl`: a webhook destination that passed SPEC §5's save-time rules. Parsed with the
//! WHATWG `url` crate, which also turns decimal, octal, hex and short IPv4 hosts into dotted form.

use std::fmt;

use url::Url;

/// Longest accepted webhook URL, in bytes (SPEC §5).
pub const MAX_WEBHOOK_URL_BYTES: usize = 2048;

/// Why a webhook URL was refused at save time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookUrlError {
    /// Not an absolute URL.
    #[error("the webhook URL is not a valid absolute URL")]
    Unparsable,
    /// A scheme other than http or https.
    #[error("the webhook URL must use http or https")]
    Scheme,
    /// No host.
    #[error("the webhook URL must have a host")]
    NoHost,
    /// A user name or password in the URL.
    #[error("the webhook URL must not contain a user name or password")]
    UserInfo,
    /// Longer than 2048 bytes.
    #[error("the webhook URL must be at most {MAX_WEBHOOK_URL_BYTES} bytes")]
    TooLong,
}

/// A webhook URL that satisfies SPEC §5's save-time rules. It is a secret: its `Debug` and
/// `Display` show only the masked form.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(Url);

impl WebhookUrl {
    /// Applies the save-time rules: http/https, a host, no user-info, at most 2048 bytes (both as
    /// given and as normalised).
    pub fn parse(raw: &str) -> Result<WebhookUrl, WebhookUrlError> {
        let raw = raw.trim();
        if raw.len() > MAX_WEBHOOK_URL_BYTES {
            return Err(WebhookUrlError::TooLong);
        }
        let url = Url::parse(raw).map_err(|_| WebhookUrlError::Unparsable)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(WebhookUrlError::Scheme);
        }
        match url.host_str() {
            Some(h) if !h.is_empty() => {}
            _ => return Err(WebhookUrlError::NoHost),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(WebhookUrlError::UserInfo);
        }
        if url.as_str().len() > MAX_WEBHOOK_URL_BYTES {
            return Err(WebhookUrlError::TooLong);
        }
        Ok(WebhookUrl(url))
    }

    /// The parsed URL.
    pub fn url(&self) -> &Url {
        &self.0
    }

    /// The full URL, for storage and delivery only: never log or display it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }

    /// A display form that hides everything after the authority: `https://hooks.example.com/…`.
    pub fn masked(&self) -> String {
        let mut out = format!("{}://", self.0.scheme());
        if let Some(host) = self.0.host_str() {
            out.push_str(host);
        }
        if let Some(port) = self.0.port() {
            out.push_str(&format!(":{port}"));
        }
        let has_more = self.0.path() != "/" || self.0.query().is_some();
        out.push_str(if has_more { "/…" } else { "/" });
        out
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.masked())
    }
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_time_rules_hold() {
        assert!(WebhookUrl::parse("https://hooks.example.com/x?y=1").is_ok());
        assert!(WebhookUrl::parse("http://127.0.0.1:9000/hook").is_ok());
        assert_eq!(
            WebhookUrl::parse("ftp://example.com/"),
            Err(WebhookUrlError::Scheme)
        );
        assert_eq!(
            WebhookUrl::parse("javascript:alert(1)"),
            Err(WebhookUrlError::Scheme)
        );
        assert_eq!(
            WebhookUrl::parse("not a url"),
            Err(WebhookUrlError::Unparsable)
        );
        assert_eq!(
            WebhookUrl::parse("https://user:pw@example.com/"),
            Err(WebhookUrlError::UserInfo)
        );
        assert_eq!(
            WebhookUrl::parse("https://user@example.com/"),
            Err(WebhookUrlError::UserInfo)
        );
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert_eq!(WebhookUrl::parse(&long), Err(WebhookUrlError::TooLong));
        let edge = format!("https://example.com/{}", "a".repeat(2048 - 20));
        assert_eq!(edge.len(), 2048);
        assert!(WebhookUrl::parse(&edge).is_ok());
    }

    #[test]
    fn ipv4_spellings_are_normalised_to_dotted_form() {
        for raw in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            let url = WebhookUrl::parse(raw).unwrap();
            assert_eq!(url.url().host_str(), Some("127.0.0.1"), "{raw}");
        }
    }

    #[test]
    fn masking_hides_path_and_query() {
        let url = WebhookUrl::parse("https://hooks.example.com:8443/secret/abc?k=v").unwrap();
        assert_eq!(url.masked(), "https://hooks.example.com:8443/…");
        assert!(!format!("{url:?}").contains("secret"));
        assert!(!url.to_string().contains("secret"));
        let bare = WebhookUrl::parse("https://hooks.example.com").unwrap();
        assert_eq!(bare.masked(), "https://hooks.example.com/");
    }
}
