//! Which service verifies a site's submissions (SPEC §8): the built-in issuer or a remote
//! siteverify, and the form fields each one's widget posts its token in.

/// Which service verifies a site's submissions (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VerifierKind {
    /// The forwarder's own Cap-compatible issuer (the default).
    #[default]
    Builtin,
    /// A remote Caputchin siteverify (JSON `{secret, response}`; `platform` fills the game fields).
    Caputchin,
    /// Cloudflare Turnstile.
    Turnstile,
    /// hCaptcha.
    Hcaptcha,
    /// Google reCAPTCHA.
    Recaptcha,
}

impl VerifierKind {
    /// Every kind.
    pub const ALL: [VerifierKind; 5] = [
        VerifierKind::Builtin,
        VerifierKind::Caputchin,
        VerifierKind::Turnstile,
        VerifierKind::Hcaptcha,
        VerifierKind::Recaptcha,
    ];

    /// The stored and typed name.
    pub fn as_str(self) -> &'static str {
        match self {
            VerifierKind::Builtin => "builtin",
            VerifierKind::Caputchin => "caputchin",
            VerifierKind::Turnstile => "turnstile",
            VerifierKind::Hcaptcha => "hcaptcha",
            VerifierKind::Recaptcha => "recaptcha",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<VerifierKind> {
        VerifierKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s.trim().to_ascii_lowercase())
    }

    /// The form fields this verifier's widget posts its token in, in order of preference.
    pub fn token_fields(self) -> &'static [&'static str] {
        match self {
            VerifierKind::Builtin | VerifierKind::Caputchin => &["caputchin-token"],
            VerifierKind::Turnstile => &["cf-turnstile-response"],
            // hCaptcha also fills g-recaptcha-response for drop-in compatibility.
            VerifierKind::Hcaptcha => &["h-captcha-response", "g-recaptcha-response"],
            VerifierKind::Recaptcha => &["g-recaptcha-response"],
        }
    }

    /// The provider's public siteverify endpoint (`None` for the built-in issuer).
    pub fn default_url(self) -> Option<&'static str> {
        match self {
            VerifierKind::Builtin => None,
            VerifierKind::Caputchin => Some("https://api.caputchin.com/v1/siteverify"),
            VerifierKind::Turnstile => {
                Some("https://challenges.cloudflare.com/turnstile/v0/siteverify")
            }
            VerifierKind::Hcaptcha => Some("https://api.hcaptcha.com/siteverify"),
            VerifierKind::Recaptcha => Some("https://www.google.com/recaptcha/api/siteverify"),
        }
    }
}

/// Every form field any verifier's widget posts a token in; all are stripped from the envelope.
pub const ALL_TOKEN_FIELDS: [&str; 4] = [
    "caputchin-token",
    "cf-turnstile-response",
    "h-captcha-response",
    "g-recaptcha-response",
];
