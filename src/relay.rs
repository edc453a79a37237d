//! The operator's SMTP relay and sender (SPEC §10), parsed from `CAPUTCHIN_SMTP_URL` and
//! `CAPUTCHIN_MAIL_FROM`. `smtp://` requires STARTTLS unless `?tls=none` is given; `smtps://` is
//! TLS from the first byte. The user and password come from the URL; the password is never
//! shown: [`SmtpRelay`]'s `Debug` and [`SmtpRelay::display`] leave it out.

use std::fmt;
use std::str::FromStr as _;

use lettre::message::Mailbox;

/// The port of `smtp://` without one: mail submission with STARTTLS (RFC 6409).
pub const SUBMISSION_PORT: u16 = 587;
/// The port of `smtps://` without one: submission over implicit TLS (RFC 8314).
pub const SUBMISSIONS_PORT: u16 = 465;

/// How the connection to the relay is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP, then STARTTLS, which the relay must offer (`smtp://`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Implicit,
    /// No TLS at all (`smtp://…?tls=none`): for a relay on the same host or network.
    None,
}

/// The relay: where to connect, how, and as whom.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpRelay {
    /// Host name or IP address (also the name its certificate must carry).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// STARTTLS, implicit TLS or none.
    pub security: Security,
    /// User name and password for AUTH, when the URL has them.
    pub credentials: Option<(String, String)>,
}

impl fmt::Debug for SmtpRelay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpRelay")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .finish()
    }
}

impl SmtpRelay {
    /// Parses `CAPUTCHIN_SMTP_URL`; the error says what is wrong without repeating the URL (it
    /// may hold a password).
    pub fn parse(raw: &str) -> Result<SmtpRelay, String> {
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            format!("not a URL such as smtp://user:password@mail.example.com:587 ({e})")
        })?;
        let (mut security, default_port) = match url.scheme() {
            "smtp" => (Security::StartTls, SUBMISSION_PORT),
            "smtps" => (Security::Implicit, SUBMISSIONS_PORT),
            other => {
                return Err(format!(
                    "the scheme must be smtp (STARTTLS) or smtps (implicit TLS), not {other:?}"
                ));
            }
        };
        let host = match url.host() {
            Some(url::Host::Domain(d)) if !d.is_empty() => d.to_owned(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            _ => return Err("the URL needs the relay's host".into()),
        };
        if url.path() != "" && url.path() != "/" {
            return Err("the URL must not have a path".into());
        }
        if url.fragment().is_some() {
            return Err("the URL must not have a fragment".into());
        }
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), value.as_ref()) {
                ("tls", "none") if security == Security::StartTls => security = Security::None,
                ("tls", "none") => {
                    return Err("smtps:// is always TLS; `?tls=none` only goes with smtp://".into());
                }
                ("tls", other) => {
                    return Err(format!(
                        "`tls` can only be `none` (smtp:// without it requires STARTTLS), not {other:?}"
                    ));
                }
                (other, _) => return Err(format!("unknown URL parameter {other:?}")),
            }
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| "the user and password must be UTF-8 once percent-decoded".to_owned())
        };
        let user = decode(url.username())?;
        let password = url.password().map(decode).transpose()?;
        let credentials = match (user.is_empty(), password) {
            (true, None) => None,
            (true, Some(_)) => return Err("a password needs a user name".into()),
            (false, None) => return Err("the user name needs a password".into()),
            (false, Some(password)) => Some((user, password)),
        };
        Ok(SmtpRelay {
            host,
            port: url.port().unwrap_or(default_port),
            security,
            credentials,
        })
    }

    /// The relay as it may be shown and logged: scheme, user, host and port, no password.
    pub fn display(&self) -> String {
        let scheme = match self.security {
            Security::Implicit => "smtps",
            _ => "smtp",
        };
        let user = self
            .credentials
            .as_ref()
            .map(|(user, _)| format!("{user}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let suffix = if self.security == Security::None {
            "?tls=none"
        } else {
            ""
        };
        format!("{scheme}://{user}{host}:{}{suffix}", self.port)
    }
}

/// Parses `CAPUTCHIN_MAIL_FROM`: `Name <address>` or a bare address.
pub fn parse_sender(raw: &str) -> Result<Mailbox, String> {
    Mailbox::from_str(raw.trim())
        .map_err(|e| format!("expected `Name <address>` or an address, got {raw:?} ({e})"))
}

/// The email destination's settings: the relay and the sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    /// The operator's relay.
    pub relay: SmtpRelay,
    /// The `From` of every message.
    pub from: Mailbox,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_urls_parse_with_their_security_and_default_ports() {
        let r = SmtpRelay::parse("smtp://u%40x:p%3Ass@mail.example.com").unwrap();
        assert_eq!(r.security, Security::StartTls);
        assert_eq!(r.port, 587);
        assert_eq!(r.host, "mail.example.com");
        assert_eq!(r.credentials, Some(("u@x".into(), "p:ss".into())));
        let r = SmtpRelay::parse("smtps://mail.example.com").unwrap();
        assert_eq!(
            (r.security, r.port, r.credentials),
            (Security::Implicit, 465, None)
        );
        let r = SmtpRelay::parse("smtp://127.0.0.1:2525?tls=none").unwrap();
        assert_eq!((r.security, r.port), (Security::None, 2525));
        let r = SmtpRelay::parse("smtp://[::1]:25/").unwrap();
        assert_eq!(r.host, "::1");
        assert_eq!(r.display(), "smtp://[::1]:25");
    }

    #[test]
    fn bad_smtp_urls_are_refused_without_echoing_the_password() {
        for raw in [
            "http://mail.example.com",
            "smtp://",
            "smtps://h?tls=none",
            "smtp://h?tls=required",
            "smtp://h?foo=1",
            "smtp://h/path",
            "smtp://user@h",
            "smtp://:secret@h",
            "not a url",
        ] {
            assert!(SmtpRelay::parse(raw).is_err(), "{raw}");
        }
        let e = SmtpRelay::parse("smtp://u:hunter2secret@h?x=1").unwrap_err();
        assert!(!e.contains("hunter2secret"), "{e}");
    }

    #[test]
    fn the_password_is_never_shown() {
        let r = SmtpRelay::parse("smtps://user:hunter2secret@mail.example.com:2465").unwrap();
        assert_eq!(r.display(), "smtps://user@mail.example.com:2465");
        assert!(!format!("{r:?}").contains("hunter2secret"));
    }

    #[test]
    fn senders_parse_with_or_without_a_name() {
        let m = parse_sender("Forms <forms@example.com>").unwrap();
        assert_eq!(m.email.to_string(), "forms@example.com");
        assert_eq!(m.name.as_deref(), Some("Forms"));
        assert!(parse_sender("forms@example.com").is_ok());
        assert!(parse_sender("not an address").is_err());
        assert!(parse_sender("a@b.c, d@e.f").is_err());
    }
}
