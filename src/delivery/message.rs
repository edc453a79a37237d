//! The email of one submission (SPEC §10): `From` the operator's sender, `To` the site's
//! addresses, `Subject: New submission — {site name}` (`[Test] ` first on a test), `Reply-To` the
//! visitor's `email` field only when it is one valid address, and a plain-text and an HTML part
//! listing the fields in posted order (values escaped), with a footer naming the site, the
//! session id and `verified_at`. No field value reaches any other header: lettre encodes the
//! subject and the addresses, and the fields go only into the bodies.

use lettre::Address;
use lettre::message::{Mailbox, Message, MultiPart};

use crate::fields::Fields;
use crate::time::utc_datetime;

/// What a submission's email says, besides its fields.
#[derive(Debug, Clone, Copy)]
pub struct About<'a> {
    /// The site's name.
    pub site_name: &'a str,
    /// The site's public key.
    pub site_key: &'a str,
    /// The verification session id (`test_…` on a test).
    pub session_id: &'a str,
    /// When the token was verified, epoch ms.
    pub verified_at: i64,
    /// A test delivery.
    pub test: bool,
}

/// The longest address accepted as a `Reply-To` (RFC 5321's path limit).
const MAX_REPLY_TO_BYTES: usize = 254;

/// The visitor's address for `Reply-To`: the `email` field when it is exactly one valid address
/// (no name, no list, nothing around it), else none.
pub fn reply_to(fields: &Fields) -> Option<Address> {
    let raw = fields.get("email")?;
    if raw.is_empty()
        || raw.len() > MAX_REPLY_TO_BYTES
        || raw
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]\\".contains(c))
    {
        return None;
    }
    raw.parse::<Address>().ok()
}

/// The subject line.
pub fn subject(about: &About<'_>) -> String {
    let test = if about.test { "[Test] " } else { "" };
    format!("{test}New submission — {}", about.site_name)
}

fn footer_lines(about: &About<'_>) -> [String; 3] {
    [
        format!("Site: {} ({})", about.site_name, about.site_key),
        format!("Session: {}", about.session_id),
        format!(
            "Verified at: {} UTC ({} ms since the epoch)",
            utc_datetime(about.verified_at),
            about.verified_at
        ),
    ]
}

/// The plain-text part: each field as `name:` and its value indented below, in posted order.
pub fn text_body(about: &About<'_>, fields: &Fields) -> String {
    let mut out = String::new();
    if about.test {
        out.push_str("This is a test delivery from the dashboard or the command line.\n\n");
    }
    out.push_str(&format!("New submission to {}\n\n", about.site_name));
    if fields.is_empty() {
        out.push_str("(no fields)\n\n");
    }
    for (name, value) in fields.iter() {
        out.push_str(name);
        out.push_str(":\n");
        for line in value.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
        if value.is_empty() {
            out.push_str("    (empty)\n");
        }
        out.push('\n');
    }
    out.push_str("-- \n");
    for line in footer_lines(about) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("Sent by Caputchin Forwarder.\n");
    out
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part: a table of the fields in posted order, every name and value escaped. Tags
/// start their own lines (between elements, where a line break changes nothing), so that a
/// submission of short values keeps every line under 75 characters (what lettre takes as 7-bit
/// text, short of MIME's 76) and goes as it is rather than quoted-printable; a long value still
/// gets encoded by lettre.
pub fn html_body(about: &About<'_>, fields: &Fields) -> String {
    let mut out = String::from(
        "<!doctype html>\n<html>\n<head><meta charset=\"utf-8\"></head>\n\
         <body style=\"font-family: sans-serif\">\n",
    );
    if about.test {
        out.push_str(
            "<p><strong>This is a test delivery</strong>\nfrom the dashboard or the command line.</p>\n",
        );
    }
    out.push_str(&format!(
        "<h1 style=\"font-size: 1.2em\">New submission to {}</h1>\n",
        escape_html(about.site_name)
    ));
    out.push_str("<table cellpadding=\"6\" style=\"border-collapse: collapse\">\n");
    for (name, value) in fields.iter() {
        out.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\">{}</th>\n<td style=\"white-space: pre-wrap\">{}</td></tr>\n",
            escape_html(name),
            escape_html(value)
        ));
    }
    out.push_str("</table>\n<hr>\n<p style=\"color: #555; font-size: .9em\">\n");
    for line in footer_lines(about) {
        out.push_str(&escape_html(&line));
        out.push_str("\n<br>\n");
    }
    out.push_str("Sent by Caputchin Forwarder.</p>\n</body>\n</html>\n");
    out
}

/// Builds the message. Fails only if lettre refuses what we give it (an address list it cannot
/// use), which the settings' and sites' rules already exclude.
pub fn build(
    from: &Mailbox,
    to: &[Address],
    about: &About<'_>,
    fields: &Fields,
) -> Result<Message, lettre::error::Error> {
    // The envelope is given, not parsed back from the headers; the Message-ID is random at the
    // sender's domain (no host name lookup per message).
    let envelope = lettre::address::Envelope::new(Some(from.email.clone()), to.to_vec())?;
    let message_id = format!(
        "<{}@{}>",
        crate::ids::to_hex(&crate::ids::random_bytes::<16>()),
        from.email.domain()
    );
    let mut builder = Message::builder()
        .envelope(envelope)
        .from(from.clone())
        .subject(subject(about))
        .date_now()
        .message_id(Some(message_id));
    for address in to {
        builder = builder.to(Mailbox::new(None, address.clone()));
    }
    if let Some(visitor) = reply_to(fields) {
        builder = builder.reply_to(Mailbox::new(None, visitor));
    }
    builder.multipart(MultiPart::alternative_plain_html(
        text_body(about, fields),
        html_body(about, fields),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::Limits;

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        let limits = Limits {
            max_fields: 100,
            max_name_bytes: 256,
        };
        Fields::from_pairs(
            pairs
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned())),
            &limits,
        )
        .unwrap()
    }

    const ABOUT: About<'static> = About {
        site_name: "Contact <form>",
        site_key: "cpt_pub_x",
        session_id: "ses_1",
        verified_at: 1_700_000_000_123,
        test: false,
    };

    #[test]
    fn reply_to_is_one_valid_address_or_nothing() {
        assert_eq!(
            reply_to(&fields(&[("email", "ada@example.com")])).map(|a| a.to_string()),
            Some("ada@example.com".into())
        );
        for bad in [
            "",
            "not an address",
            "a@example.com, b@example.com",
            "Ada <ada@example.com>",
            "ada@example.com\r\nBcc: x@example.com",
            "ada@example.com\nBcc: x@example.com",
            " ada@example.com",
        ] {
            assert!(reply_to(&fields(&[("email", bad)])).is_none(), "{bad:?}");
        }
        assert!(reply_to(&fields(&[("mail", "ada@example.com")])).is_none());
    }

    #[test]
    fn bodies_list_fields_in_order_and_escape_html() {
        let f = fields(&[("b", "<script>x</script>"), ("a", "line 1\nline 2")]);
        let text = text_body(&ABOUT, &f);
        assert!(
            text.find("b:\n    <script>").unwrap()
                < text.find("a:\n    line 1\n    line 2").unwrap()
        );
        assert!(text.contains("Session: ses_1"));
        assert!(
            text.contains("Verified at: 2023-11-14 22:13:20 UTC (1700000000123 ms"),
            "{text}"
        );
        let html = html_body(&ABOUT, &f);
        assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert!(!html.contains("<script>"));
        assert!(html.contains("Contact &lt;form&gt;"));
        assert!(
            html.find("<th align=\"left\" valign=\"top\">b</th>")
                .unwrap()
                < html.find(">a</th>").unwrap()
        );
    }

    #[test]
    fn short_values_give_lines_that_need_no_transfer_encoding() {
        let f = fields(&[("name", "Ada"), ("message", "hello")]);
        for body in [text_body(&ABOUT, &f), html_body(&ABOUT, &f)] {
            let longest = body.lines().map(str::len).max().unwrap_or(0);
            assert!(longest < 75, "a line of {longest} bytes in:\n{body}");
        }
        let message = build(
            &"Forms <forms@example.com>".parse().unwrap(),
            &["owner@example.com".parse().unwrap()],
            &ABOUT,
            &f,
        )
        .unwrap();
        let raw = String::from_utf8(message.formatted()).unwrap();
        assert_eq!(
            raw.matches("Content-Transfer-Encoding: 7bit").count(),
            2,
            "{raw}"
        );
        assert!(!raw.contains("quoted-printable"), "{raw}");
    }

    #[test]
    fn a_test_says_so_in_the_subject_and_bodies() {
        let about = About {
            test: true,
            ..ABOUT
        };
        assert_eq!(subject(&about), "[Test] New submission — Contact <form>");
        assert_eq!(subject(&ABOUT), "New submission — Contact <form>");
        assert!(text_body(&about, &fields(&[])).starts_with("This is a test delivery"));
        assert!(html_body(&about, &fields(&[])).contains("This is a test delivery"));
    }
}
