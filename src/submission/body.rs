//! Parsing a posted form body into ordered fields (SPEC §3).
//!
//! This module owns the body rules of the form endpoint: which content types are accepted
//! (`application/x-www-form-urlencoded`, `multipart/form-data` with text parts only, and a flat
//! `application/json` object of strings), how repeated names are joined, which token fields are
//! removed, and the field-count and field-name limits. The body it is given has already been read
//! in full and capped at the configured byte limit by the caller.
//!
//! When a body has several problems, the first failing check in this order decides the error:
//!
//! 1. the content type ([`BodyError::UnsupportedContentType`]);
//! 2. the syntax of the whole body, then UTF-8 of every name and of every text value
//!    ([`BodyError::Malformed`]); the content of a file part is not text and is not checked;
//! 3. file parts with content ([`BodyError::FileUpload`]);
//! 4. after the token fields are removed, the number of posted pairs
//!    ([`BodyError::TooManyFields`]), then the length of each name ([`BodyError::NameTooLong`]).

use std::fmt;

use actix_multipart::Multipart;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use bytes::Bytes;
use futures_util::{FutureExt, Stream, StreamExt};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};

pub use crate::fields::{BodyError, Fields, Limits};

/// A parsed body: the fields to forward and the captcha token that was removed from them.
///
/// Its `Debug` output hides the token and the field contents.
#[derive(Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The fields to forward, with every token field removed.
    pub fields: Fields,
    /// The first non-empty value among the token fields, if any.
    pub token: Option<String>,
}

impl fmt::Debug for Parsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parsed")
            .field("fields", &self.fields)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Parses a form body that has already been read in full.
///
/// `content_type` is the request's `Content-Type` header; its media type is matched
/// case-insensitively and its parameters are ignored, except `boundary` for multipart (a
/// `charset` is accepted and the body is always read as UTF-8). Every field whose name is in
/// `token_fields` is removed wherever it appears; the first non-empty value among them becomes
/// [`Parsed::token`].
///
/// # Errors
///
/// The [`BodyError`] of the first failing check, in the order given in the module
/// documentation.
pub async fn parse(
    content_type: Option<&str>,
    body: Bytes,
    token_fields: &[&str],
    limits: &Limits,
) -> Result<Parsed, BodyError> {
    let content_type = content_type.ok_or(BodyError::UnsupportedContentType)?;
    let pairs = match media_type(content_type).as_str() {
        "application/x-www-form-urlencoded" => parse_urlencoded(&body)?,
        "multipart/form-data" => parse_multipart(content_type, body)?,
        "application/json" => parse_json(&body)?,
        _ => return Err(BodyError::UnsupportedContentType),
    };

    let mut token = None;
    let kept = pairs.into_iter().filter_map(|(name, value)| {
        if !token_fields.contains(&name.as_str()) {
            return Some((name, value));
        }
        if token.is_none() && !value.is_empty() {
            token = Some(value);
        }
        None
    });
    let fields = Fields::from_pairs(kept.collect::<Vec<_>>(), limits)?;
    Ok(Parsed { fields, token })
}

/// Returns the lowercased `type/subtype` of a `Content-Type` value, without parameters.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Parses an `application/x-www-form-urlencoded` body.
///
/// `+` decodes to a space and `%XX` to a byte; a `%` not followed by two hex digits is malformed
/// rather than kept as is, because browsers always encode `%` itself. A pair without `=` is a name
/// with an empty value, and empty pairs are skipped.
fn parse_urlencoded(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    body.split(|&byte| byte == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|&byte| byte == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            Ok((percent_decode(name)?, percent_decode(value)?))
        })
        .collect()
}

/// Decodes one urlencoded name or value into UTF-8 text.
fn percent_decode(encoded: &[u8]) -> Result<String, BodyError> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut rest = encoded;
    while let Some((&byte, tail)) = rest.split_first() {
        match byte {
            b'+' => {
                decoded.push(b' ');
                rest = tail;
            }
            b'%' => match tail {
                [high, low, after @ ..] => {
                    decoded.push((hex_value(*high)? << 4) | hex_value(*low)?);
                    rest = after;
                }
                _ => return Err(BodyError::Malformed),
            },
            _ => {
                decoded.push(byte);
                rest = tail;
            }
        }
    }
    String::from_utf8(decoded).map_err(|_| BodyError::Malformed)
}

/// Returns the value of one hexadecimal digit.
fn hex_value(digit: u8) -> Result<u8, BodyError> {
    match digit {
        b'0'..=b'9' => Ok(digit - b'0'),
        b'a'..=b'f' => Ok(digit - b'a' + 10),
        b'A'..=b'F' => Ok(digit - b'A' + 10),
        _ => Err(BodyError::Malformed),
    }
}

/// One part of a multipart body, before its content is checked.
struct RawPart {
    name: String,
    kind: PartKind,
    content: Vec<u8>,
}

/// What a part's headers make of it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PartKind {
    /// A text field.
    Text,
    /// A file input (`filename`): refused when it has content, ignored when empty.
    File,
    /// Several `Content-Disposition` headers of which one names a file: refused as an upload.
    AmbiguousFile,
    /// Not a text field a browser would send: several dispositions, or a non-text content type.
    Malformed,
}

/// Reads a part's headers: exactly one `Content-Disposition` as browsers write it, and for a text
/// field no content type but `text/*`.
fn part_kind(headers: &HeaderMap) -> Result<(String, PartKind), BodyError> {
    // The raw header, read the way browsers write it (see `form_data_disposition`), not as an
    // RFC 2616 quoted-string, which would eat backslashes in names.
    let dispositions: Vec<Option<(String, bool)>> = headers
        .get_all(header::CONTENT_DISPOSITION)
        .map(|v| {
            std::str::from_utf8(v.as_bytes())
                .ok()
                .and_then(form_data_disposition)
        })
        .collect();
    if dispositions.len() > 1 {
        let names_file = dispositions.iter().flatten().any(|(_, is_file)| *is_file);
        let name = dispositions.iter().flatten().next().map(|(n, _)| n.clone());
        let kind = if names_file {
            PartKind::AmbiguousFile
        } else {
            PartKind::Malformed
        };
        return Ok((name.unwrap_or_default(), kind));
    }
    let (name, is_file) = dispositions
        .into_iter()
        .next()
        .flatten()
        .ok_or(BodyError::Malformed)?;
    if is_file {
        return Ok((name, PartKind::File));
    }
    let text = headers.get(header::CONTENT_TYPE).is_none_or(|v| {
        v.to_str()
            .is_ok_and(|t| t.trim_start().to_ascii_lowercase().starts_with("text/"))
    });
    Ok((
        name,
        if text {
            PartKind::Text
        } else {
            PartKind::Malformed
        },
    ))
}

/// Parses a `multipart/form-data` body: text parts only.
///
/// The whole body is read before any part is judged, so a syntax error anywhere wins over a
/// file upload or invalid UTF-8 earlier in the body.
///
/// Since every byte is already there, the parser must never wait: actix-multipart answers
/// `Pending` without a wake-up on some truncated bodies, which would hang the request forever,
/// so any `Pending` is taken as an incomplete body (see [`next_ready`]).
fn parse_multipart(content_type: &str, body: Bytes) -> Result<Vec<(String, String)>, BodyError> {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(content_type).map_err(|_| BodyError::Malformed)?,
    );
    let stream = futures_util::stream::once(std::future::ready(Ok::<_, PayloadError>(body)));
    let mut multipart = Multipart::new(&headers, stream);

    let mut parts = Vec::new();
    while let Some(field) = next_ready(&mut multipart)? {
        let mut field = field.map_err(|_| BodyError::Malformed)?;
        let (name, kind) = part_kind(field.headers())?;
        let mut content = Vec::new();
        while let Some(chunk) = next_ready(&mut field)? {
            content.extend_from_slice(&chunk.map_err(|_| BodyError::Malformed)?);
        }
        parts.push(RawPart {
            name,
            kind,
            content,
        });
    }

    let mut pairs = Vec::with_capacity(parts.len());
    let (mut has_upload, mut malformed) = (false, false);
    for part in parts {
        match part.kind {
            // An empty file input is sent with a filename and no content: it is ignored
            // entirely (SPEC §3), and a file's bytes are not text to check for UTF-8.
            PartKind::File => has_upload |= !part.content.is_empty(),
            PartKind::AmbiguousFile => has_upload = true,
            PartKind::Malformed => malformed = true,
            PartKind::Text => match String::from_utf8(part.content) {
                Ok(value) => pairs.push((part.name, value)),
                Err(_) => malformed = true,
            },
        }
    }
    // As before any part was judged: a part that is not text wins over an upload.
    if malformed {
        return Err(BodyError::Malformed);
    }
    if has_upload {
        return Err(BodyError::FileUpload);
    }
    Ok(pairs)
}

/// Returns the next item of a multipart stream over a body that is already in memory.
///
/// # Errors
///
/// [`BodyError::Malformed`] when the stream is not ready, which with all bytes present means the
/// parser is waiting for input that will never come.
fn next_ready<S: Stream + Unpin>(stream: &mut S) -> Result<Option<S::Item>, BodyError> {
    stream.next().now_or_never().ok_or(BodyError::Malformed)
}

/// Reads a part's `Content-Disposition` as browsers write it (HTML's multipart/form-data
/// encoding): `form-data; name="…"[; filename="…"]`, where a quoted value runs to the next `"`
/// (browsers send `"` as `%22` and CR/LF as `%0D`/`%0A`, and a backslash as is). Returns the
/// name and whether the part carries a `filename` (or `filename*`).
fn form_data_disposition(raw: &str) -> Option<(String, bool)> {
    let mut rest = raw.trim_start();
    let kind_end = rest.find(';').unwrap_or(rest.len());
    if !rest[..kind_end].trim().eq_ignore_ascii_case("form-data") {
        return None;
    }
    rest = &rest[kind_end..];
    let (mut name, mut is_file) = (None, false);
    while let Some(after) = rest.strip_prefix(';') {
        let after = after.trim_start();
        let eq = after.find('=')?;
        let key = after[..eq].trim().to_ascii_lowercase();
        let value_part = &after[eq + 1..];
        let (value, remainder) = if let Some(quoted) = value_part.strip_prefix('"') {
            let close = quoted.find('"')?;
            (&quoted[..close], quoted[close + 1..].trim_start())
        } else {
            let end = value_part.find(';').unwrap_or(value_part.len());
            (value_part[..end].trim(), &value_part[end..])
        };
        match key.as_str() {
            "name" if name.is_none() => name = Some(value.to_owned()),
            "filename" | "filename*" => is_file = true,
            _ => {}
        }
        rest = remainder;
        if !rest.is_empty() && !rest.starts_with(';') {
            return None;
        }
    }
    Some((name?, is_file))
}

/// Parses an `application/json` body: one flat object whose values are all strings.
fn parse_json(body: &[u8]) -> Result<Vec<(String, String)>, BodyError> {
    serde_json::from_slice::<FlatObject>(body)
        .map(|object| object.0)
        .map_err(|_| BodyError::Malformed)
}

/// A JSON object of strings read entry by entry, so that a repeated key is seen and joined like
/// a repeated form name instead of the last one silently winning.
struct FlatObject(Vec<(String, String)>);

impl<'de> Deserialize<'de> for FlatObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FlatObjectVisitor)
    }
}

/// Visits the entries of a [`FlatObject`]; any value that is not a string fails the visit.
struct FlatObjectVisitor;

impl<'de> Visitor<'de> for FlatObjectVisitor {
    type Value = FlatObject;

    fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("a JSON object whose values are all strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(0));
        while let Some(entry) = map.next_entry::<String, String>()? {
            entries.push(entry);
        }
        Ok(FlatObject(entries))
    }
}

#[cfg(test)]
mod disposition_tests {
    use super::form_data_disposition;

    #[test]
    fn browser_dispositions_are_read_with_backslashes_kept() {
        let cases: [(&str, Option<(&str, bool)>); 8] = [
            (r#"form-data; name="x\y""#, Some((r"x\y", false))),
            (
                r#"form-data; name="a\"; filename="c.txt""#,
                Some((r"a\", true)),
            ),
            (r#"form-data; name="f"; filename="""#, Some(("f", true))),
            ("form-data; name=plain", Some(("plain", false))),
            (
                r#"form-data; name="semi;colon""#,
                Some(("semi;colon", false)),
            ),
            (r#"attachment; name="x""#, None),
            (r#"form-data; filename="x""#, None),
            (r#"form-data; name="unterminated"#, None),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                form_data_disposition(raw),
                expected.map(|(n, f)| (n.to_owned(), f)),
                "{raw}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN_FIELDS: &[&str] = &["caputchin-token"];
    const LIMITS: Limits = Limits {
        max_fields: 100,
        max_name_bytes: 256,
    };
    const URLENCODED: &str = "application/x-www-form-urlencoded";
    const JSON: &str = "application/json";
    const BOUNDARY: &str = "----formboundary7MA4YWxk";

    /// Builds a multipart body from `(name, filename, content)` parts with [`BOUNDARY`].
    fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, filename, content) in parts {
            body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
            let disposition = match filename {
                Some(filename) => {
                    format!("form-data; name=\"{name}\"; filename=\"{filename}\"\r\n")
                }
                None => format!("form-data; name=\"{name}\"\r\n"),
            };
            body.extend_from_slice(format!("Content-Disposition: {disposition}").as_bytes());
            if filename.is_some() {
                body.extend_from_slice(b"Content-Type: application/octet-stream\r\n");
            }
            body.extend_from_slice(b"\r\n");
            body.extend_from_slice(content);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    fn multipart_type() -> String {
        format!("multipart/form-data; boundary={BOUNDARY}")
    }

    async fn parse_as(content_type: &str, body: impl Into<Vec<u8>>) -> Result<Parsed, BodyError> {
        parse_with(content_type, body, &LIMITS).await
    }

    async fn parse_with(
        content_type: &str,
        body: impl Into<Vec<u8>>,
        limits: &Limits,
    ) -> Result<Parsed, BodyError> {
        parse(
            Some(content_type),
            Bytes::from(body.into()),
            TOKEN_FIELDS,
            limits,
        )
        .await
    }

    fn pairs(fields: &Fields) -> Vec<(&str, &str)> {
        fields.iter().collect()
    }

    /// A urlencoded body of `count` distinct fields, each name `name_len` bytes long.
    fn urlencoded_fields(count: usize, name_len: usize) -> String {
        (0..count)
            .map(|index| format!("{index:0>name_len$}=v"))
            .collect::<Vec<_>>()
            .join("&")
    }

    #[actix_web::test]
    async fn urlencoded_body_round_trips_in_order() {
        let parsed = parse_as(URLENCODED, "name=Ada&email=ada%40example.org&message=Hi")
            .await
            .unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [
                ("name", "Ada"),
                ("email", "ada@example.org"),
                ("message", "Hi")
            ]
        );
        assert_eq!(parsed.token, None);
    }

    #[actix_web::test]
    async fn multipart_body_round_trips_in_order() {
        let body = multipart_body(&[
            ("name", None, b"Ada"),
            ("message", None, "Grüße\r\nline two".as_bytes()),
            ("prénom", None, b"A"),
        ]);
        let parsed = parse_as(&multipart_type(), body).await.unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [
                ("name", "Ada"),
                ("message", "Grüße\r\nline two"),
                ("prénom", "A")
            ]
        );
    }

    #[actix_web::test]
    async fn json_body_round_trips_in_order() {
        let parsed = parse_as(JSON, r#"{"zeta":"1","alpha":"2","mid":"tab\tand \u00e9"}"#)
            .await
            .unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [("zeta", "1"), ("alpha", "2"), ("mid", "tab\tand é")]
        );
    }

    #[actix_web::test]
    async fn empty_urlencoded_body_has_no_fields() {
        let parsed = parse_as(URLENCODED, "").await.unwrap();
        assert!(parsed.fields.is_empty());
        assert_eq!(parsed.fields.len(), 0);
    }

    #[actix_web::test]
    async fn repeated_urlencoded_names_are_joined_in_posted_order_at_first_position() {
        let parsed = parse_as(URLENCODED, "topic=a&name=Ada&topic=b&topic=c")
            .await
            .unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [("topic", "a, b, c"), ("name", "Ada")]
        );
    }

    #[actix_web::test]
    async fn repeated_multipart_names_are_joined_in_posted_order() {
        let body = multipart_body(&[
            ("topic", None, b"a"),
            ("name", None, b"Ada"),
            ("topic", None, b"b"),
        ]);
        let parsed = parse_as(&multipart_type(), body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("topic", "a, b"), ("name", "Ada")]);
    }

    #[actix_web::test]
    async fn repeated_json_keys_are_joined_in_posted_order() {
        let parsed = parse_as(JSON, r#"{"topic":"a","name":"Ada","topic":"b"}"#)
            .await
            .unwrap();
        assert_eq!(pairs(&parsed.fields), [("topic", "a, b"), ("name", "Ada")]);
    }

    #[actix_web::test]
    async fn json_object_for_the_webhook_keeps_field_order() {
        let parsed = parse_as(URLENCODED, "zeta=1&alpha=2&mid=3&alpha=4")
            .await
            .unwrap();
        let object = serde_json::to_value(&parsed.fields).unwrap();
        let keys: Vec<&str> = object
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["zeta", "alpha", "mid"]);
        assert_eq!(
            serde_json::to_string(&parsed.fields).unwrap(),
            r#"{"zeta":"1","alpha":"2, 4","mid":"3"}"#
        );
    }

    #[actix_web::test]
    async fn get_finds_a_field_by_name() {
        let parsed = parse_as(URLENCODED, "a=1&b=2").await.unwrap();
        assert_eq!(parsed.fields.get("b"), Some("2"));
        assert_eq!(parsed.fields.get("c"), None);
    }

    #[actix_web::test]
    async fn every_urlencoded_token_is_removed_and_the_first_non_empty_one_returned() {
        let parsed = parse_as(
            URLENCODED,
            "caputchin-token=&name=Ada&caputchin-token=first&caputchin-token=second",
        )
        .await
        .unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada")]);
        assert_eq!(parsed.token.as_deref(), Some("first"));
    }

    #[actix_web::test]
    async fn every_multipart_token_is_removed_and_the_first_non_empty_one_returned() {
        let body = multipart_body(&[
            ("caputchin-token", None, b""),
            ("name", None, b"Ada"),
            ("caputchin-token", None, b"first"),
            ("caputchin-token", None, b"second"),
        ]);
        let parsed = parse_as(&multipart_type(), body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada")]);
        assert_eq!(parsed.token.as_deref(), Some("first"));
    }

    #[actix_web::test]
    async fn every_json_token_is_removed_and_the_first_non_empty_one_returned() {
        let parsed = parse_as(
            JSON,
            r#"{"caputchin-token":"","name":"Ada","caputchin-token":"first","caputchin-token":"second"}"#,
        )
        .await
        .unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada")]);
        assert_eq!(parsed.token.as_deref(), Some("first"));
    }

    #[actix_web::test]
    async fn every_configured_token_field_is_removed() {
        let parsed = parse(
            Some(URLENCODED),
            Bytes::from_static(b"h-captcha-response=&caputchin-token=cap&name=Ada"),
            &["caputchin-token", "h-captcha-response"],
            &LIMITS,
        )
        .await
        .unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada")]);
        assert_eq!(parsed.token.as_deref(), Some("cap"));
    }

    #[actix_web::test]
    async fn only_empty_tokens_give_no_token() {
        let parsed = parse_as(URLENCODED, "caputchin-token=&caputchin-token")
            .await
            .unwrap();
        assert!(parsed.fields.is_empty());
        assert_eq!(parsed.token, None);
    }

    #[actix_web::test]
    async fn plus_and_percent_20_both_decode_to_a_space() {
        let parsed = parse_as(
            URLENCODED,
            "full+name=Ada+Lovelace&city=New%20York&sum=1%2B1",
        )
        .await
        .unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [
                ("full name", "Ada Lovelace"),
                ("city", "New York"),
                ("sum", "1+1")
            ]
        );
    }

    #[actix_web::test]
    async fn percent_encoded_utf8_decodes() {
        let parsed = parse_as(URLENCODED, "pr%C3%A9nom=%E2%9C%93").await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("prénom", "✓")]);
    }

    #[actix_web::test]
    async fn urlencoded_pair_without_equals_is_a_name_with_an_empty_value() {
        let parsed = parse_as(URLENCODED, "subscribe&name=Ada&note=")
            .await
            .unwrap();
        assert_eq!(
            pairs(&parsed.fields),
            [("subscribe", ""), ("name", "Ada"), ("note", "")]
        );
    }

    #[actix_web::test]
    async fn empty_urlencoded_pairs_are_skipped() {
        let parsed = parse_as(URLENCODED, "&&a=1&&b=2&").await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1"), ("b", "2")]);
    }

    #[actix_web::test]
    async fn value_keeps_everything_after_the_first_equals() {
        let parsed = parse_as(URLENCODED, "expr=a=b").await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("expr", "a=b")]);
    }

    #[actix_web::test]
    async fn invalid_utf8_after_urlencoded_decoding_is_malformed() {
        for body in ["name=%FF", "%C3=x", "name=%C3%28"] {
            assert_eq!(
                parse_as(URLENCODED, body).await.unwrap_err(),
                BodyError::Malformed,
                "{body}"
            );
        }
        let raw = b"name=\xff".to_vec();
        assert_eq!(
            parse_as(URLENCODED, raw).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn broken_percent_escape_is_malformed() {
        for body in ["a=100%", "a=%4", "a=%zz", "%=1"] {
            assert_eq!(
                parse_as(URLENCODED, body).await.unwrap_err(),
                BodyError::Malformed,
                "{body}"
            );
        }
    }

    #[actix_web::test]
    async fn invalid_utf8_in_a_multipart_value_is_malformed() {
        let body = multipart_body(&[("name", None, b"\xff\xfe")]);
        assert_eq!(
            parse_as(&multipart_type(), body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn invalid_utf8_in_a_multipart_name_is_malformed() {
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Disposition: form-data; name=\"n\xffame\"\r\n\r\nAda\r\n");
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        assert_eq!(
            parse_as(&multipart_type(), body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn invalid_utf8_in_json_is_malformed() {
        let mut body = b"{\"name\":\"".to_vec();
        body.extend_from_slice(b"\xff\"}");
        assert_eq!(
            parse_as(JSON, body).await.unwrap_err(),
            BodyError::Malformed
        );
        assert_eq!(
            parse_as(JSON, r#"{"name":"\ud800"}"#).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn multipart_with_a_boundary_that_does_not_match_is_malformed() {
        let body = multipart_body(&[("name", None, b"Ada")]);
        let content_type = "multipart/form-data; boundary=someotherboundary";
        assert_eq!(
            parse_as(content_type, body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn multipart_without_a_boundary_parameter_is_malformed() {
        let body = multipart_body(&[("name", None, b"Ada")]);
        assert_eq!(
            parse_as("multipart/form-data", body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn truncated_multipart_is_malformed() {
        let body = multipart_body(&[("name", None, b"Ada"), ("message", None, b"Hello")]);
        for cut in [body.len() - 20, body.len() / 2, 10] {
            assert_eq!(
                parse_as(&multipart_type(), body[..cut].to_vec())
                    .await
                    .unwrap_err(),
                BodyError::Malformed,
                "cut at {cut}"
            );
        }
    }

    #[actix_web::test]
    async fn empty_multipart_body_is_malformed() {
        assert_eq!(
            parse_as(&multipart_type(), "").await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn multipart_part_without_a_name_is_malformed() {
        let mut body = Vec::new();
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        body.extend_from_slice(b"Content-Disposition: form-data\r\n\r\nAda\r\n");
        body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        assert_eq!(
            parse_as(&multipart_type(), body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    /// A multipart body with one part carrying these raw header lines.
    fn one_part(headers: &[&str], content: &[u8]) -> Vec<u8> {
        let mut body = format!("--{BOUNDARY}\r\n").into_bytes();
        for line in headers {
            body.extend_from_slice(format!("{line}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(content);
        body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
        body
    }

    #[actix_web::test]
    async fn a_part_with_two_dispositions_is_malformed_or_an_upload_when_one_names_a_file() {
        let cases: [(&[&str], BodyError); 5] = [
            (
                &[
                    r#"Content-Disposition: form-data; name="a""#,
                    r#"Content-Disposition: form-data; name="b""#,
                ],
                BodyError::Malformed,
            ),
            (
                &[
                    r#"Content-Disposition: form-data; name="a""#,
                    r#"Content-Disposition: form-data; name="a"; filename="x.txt""#,
                ],
                BodyError::FileUpload,
            ),
            (
                &[
                    r#"Content-Disposition: form-data; name="a"; filename="x.txt""#,
                    r#"Content-Disposition: form-data; name="a""#,
                ],
                BodyError::FileUpload,
            ),
            (
                &[
                    r#"Content-Disposition: form-data; name="a""#,
                    "Content-Disposition: attachment",
                ],
                BodyError::Malformed,
            ),
            // actix-multipart refuses a part whose first disposition is not `form-data` before
            // its headers reach us, whatever follows.
            (
                &[
                    "Content-Disposition: attachment",
                    r#"Content-Disposition: form-data; name="a"; filename="x.txt""#,
                ],
                BodyError::Malformed,
            ),
        ];
        for (headers, expected) in cases {
            assert_eq!(
                parse_as(&multipart_type(), one_part(headers, b""))
                    .await
                    .unwrap_err(),
                expected,
                "{headers:?}"
            );
        }
    }

    #[actix_web::test]
    async fn a_text_part_with_a_non_text_content_type_is_malformed() {
        let disposition = r#"Content-Disposition: form-data; name="a""#;
        for content_type in [
            "application/octet-stream",
            "image/png",
            "multipart/mixed; boundary=x",
        ] {
            let body = one_part(
                &[disposition, &format!("Content-Type: {content_type}")],
                b"x",
            );
            assert_eq!(
                parse_as(&multipart_type(), body).await.unwrap_err(),
                BodyError::Malformed,
                "{content_type}"
            );
        }
        for content_type in ["text/plain", "text/plain; charset=UTF-8", "TEXT/html"] {
            let body = one_part(
                &[disposition, &format!("Content-Type: {content_type}")],
                b"x",
            );
            let parsed = parse_as(&multipart_type(), body).await.unwrap();
            assert_eq!(pairs(&parsed.fields), [("a", "x")], "{content_type}");
        }
    }

    #[actix_web::test]
    async fn multipart_file_part_with_content_is_a_file_upload() {
        let body = multipart_body(&[
            ("name", None, b"Ada"),
            ("cv", Some("cv.pdf"), b"%PDF-1.7 \xff\x00 binary"),
        ]);
        assert_eq!(
            parse_as(&multipart_type(), body).await.unwrap_err(),
            BodyError::FileUpload
        );
    }

    #[actix_web::test]
    async fn empty_file_input_is_ignored() {
        let body = multipart_body(&[
            ("name", None, b"Ada"),
            ("cv", Some(""), b""),
            ("message", None, b"Hi"),
        ]);
        let parsed = parse_as(&multipart_type(), body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada"), ("message", "Hi")]);
    }

    #[actix_web::test]
    async fn empty_file_input_does_not_count_towards_the_field_limit() {
        let body = multipart_body(&[("name", None, b"Ada"), ("cv", Some(""), b"")]);
        let limits = Limits {
            max_fields: 1,
            ..LIMITS
        };
        let parsed = parse_with(&multipart_type(), body, &limits).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("name", "Ada")]);
    }

    #[actix_web::test]
    async fn json_values_that_are_not_strings_are_malformed() {
        for body in [
            r#"{"age":42}"#,
            r#"{"nested":{"a":"b"}}"#,
            r#"{"list":["a","b"]}"#,
            r#"{"nothing":null}"#,
            r#"{"yes":true}"#,
        ] {
            assert_eq!(
                parse_as(JSON, body).await.unwrap_err(),
                BodyError::Malformed,
                "{body}"
            );
        }
    }

    #[actix_web::test]
    async fn json_that_is_not_a_single_object_is_malformed() {
        for body in [
            r#"["a","b"]"#,
            r#""text""#,
            "null",
            "42",
            "",
            r#"{"a":"1""#,
            r#"{"a":"1"} {"b":"2"}"#,
        ] {
            assert_eq!(
                parse_as(JSON, body).await.unwrap_err(),
                BodyError::Malformed,
                "{body}"
            );
        }
    }

    #[actix_web::test]
    async fn field_count_at_the_limit_is_accepted_and_one_past_is_rejected() {
        let limits = Limits {
            max_fields: 3,
            ..LIMITS
        };
        let at_limit = parse_with(URLENCODED, urlencoded_fields(3, 2), &limits)
            .await
            .unwrap();
        assert_eq!(at_limit.fields.len(), 3);
        assert_eq!(
            parse_with(URLENCODED, urlencoded_fields(4, 2), &limits)
                .await
                .unwrap_err(),
            BodyError::TooManyFields
        );
    }

    #[actix_web::test]
    async fn repeated_names_count_each_posted_pair_towards_the_field_limit() {
        let limits = Limits {
            max_fields: 2,
            ..LIMITS
        };
        assert_eq!(
            parse_with(URLENCODED, "a=1&a=2&a=3", &limits)
                .await
                .unwrap_err(),
            BodyError::TooManyFields
        );
    }

    #[actix_web::test]
    async fn token_fields_do_not_count_towards_the_field_limit() {
        let limits = Limits {
            max_fields: 2,
            ..LIMITS
        };
        let parsed = parse_with(
            URLENCODED,
            "caputchin-token=t&a=1&caputchin-token=u&b=2",
            &limits,
        )
        .await
        .unwrap();
        assert_eq!(parsed.fields.len(), 2);
    }

    #[actix_web::test]
    async fn field_count_limit_applies_to_multipart_and_json() {
        let limits = Limits {
            max_fields: 1,
            ..LIMITS
        };
        let body = multipart_body(&[("a", None, b"1"), ("b", None, b"2")]);
        assert_eq!(
            parse_with(&multipart_type(), body, &limits)
                .await
                .unwrap_err(),
            BodyError::TooManyFields
        );
        assert_eq!(
            parse_with(JSON, r#"{"a":"1","b":"2"}"#, &limits)
                .await
                .unwrap_err(),
            BodyError::TooManyFields
        );
    }

    #[actix_web::test]
    async fn name_length_at_the_limit_is_accepted_and_one_past_is_rejected() {
        let limits = Limits {
            max_name_bytes: 8,
            ..LIMITS
        };
        let at_limit = parse_with(URLENCODED, urlencoded_fields(1, 8), &limits)
            .await
            .unwrap();
        assert_eq!(pairs(&at_limit.fields), [("00000000", "v")]);
        assert_eq!(
            parse_with(URLENCODED, urlencoded_fields(1, 9), &limits)
                .await
                .unwrap_err(),
            BodyError::NameTooLong
        );
    }

    #[actix_web::test]
    async fn name_length_is_counted_in_decoded_utf8_bytes() {
        let limits = Limits {
            max_name_bytes: 4,
            ..LIMITS
        };
        // "éé" is 4 bytes of UTF-8 (12 bytes encoded); "ééé" is 6.
        assert!(
            parse_with(URLENCODED, "%C3%A9%C3%A9=v", &limits)
                .await
                .is_ok()
        );
        assert_eq!(
            parse_with(JSON, r#"{"ééé":"v"}"#, &limits)
                .await
                .unwrap_err(),
            BodyError::NameTooLong
        );
    }

    #[actix_web::test]
    async fn unsupported_or_missing_content_type_is_rejected() {
        for content_type in [
            "text/plain",
            "text/plain; charset=utf-8",
            "multipart/mixed; boundary=x",
            "application/xml",
            "",
        ] {
            assert_eq!(
                parse_as(content_type, "a=1").await.unwrap_err(),
                BodyError::UnsupportedContentType,
                "{content_type}"
            );
        }
        assert_eq!(
            parse(None, Bytes::from_static(b"a=1"), TOKEN_FIELDS, &LIMITS)
                .await
                .unwrap_err(),
            BodyError::UnsupportedContentType
        );
    }

    #[actix_web::test]
    async fn charset_parameter_is_accepted() {
        let parsed = parse_as("application/x-www-form-urlencoded; charset=UTF-8", "a=1")
            .await
            .unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
        let parsed = parse_as("application/json; charset=utf-8", r#"{"a":"1"}"#)
            .await
            .unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
        let content_type = format!("multipart/form-data; charset=utf-8; boundary={BOUNDARY}");
        let body = multipart_body(&[("a", None, b"1")]);
        let parsed = parse_as(&content_type, body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
    }

    #[actix_web::test]
    async fn uppercase_media_type_is_accepted() {
        let parsed = parse_as("Application/X-WWW-Form-URLEncoded", "a=1")
            .await
            .unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
        let parsed = parse_as("APPLICATION/JSON", r#"{"a":"1"}"#).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
        let content_type = format!("MULTIPART/FORM-DATA; boundary={BOUNDARY}");
        let body = multipart_body(&[("a", None, b"1")]);
        let parsed = parse_as(&content_type, body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
    }

    #[actix_web::test]
    async fn quoted_multipart_boundary_is_accepted() {
        let content_type = format!("multipart/form-data; boundary=\"{BOUNDARY}\"");
        let body = multipart_body(&[("a", None, b"1")]);
        let parsed = parse_as(&content_type, body).await.unwrap();
        assert_eq!(pairs(&parsed.fields), [("a", "1")]);
    }

    #[actix_web::test]
    async fn content_type_is_checked_before_syntax() {
        assert_eq!(
            parse_as("text/plain", b"\xff".to_vec()).await.unwrap_err(),
            BodyError::UnsupportedContentType
        );
    }

    #[actix_web::test]
    async fn syntax_is_checked_before_file_upload() {
        let body = multipart_body(&[("cv", Some("cv.pdf"), b"data")]);
        let truncated = body[..body.len() - 10].to_vec();
        assert_eq!(
            parse_as(&multipart_type(), truncated).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn invalid_utf8_text_is_checked_before_file_upload() {
        let body = multipart_body(&[("cv", Some("cv.pdf"), b"data"), ("name", None, b"\xff")]);
        assert_eq!(
            parse_as(&multipart_type(), body).await.unwrap_err(),
            BodyError::Malformed
        );
    }

    #[actix_web::test]
    async fn file_upload_is_checked_before_limits() {
        let body = multipart_body(&[
            ("a", None, b"1"),
            ("b", None, b"2"),
            ("cv", Some("cv.pdf"), b"data"),
        ]);
        let limits = Limits {
            max_fields: 1,
            ..LIMITS
        };
        assert_eq!(
            parse_with(&multipart_type(), body, &limits)
                .await
                .unwrap_err(),
            BodyError::FileUpload
        );
    }

    #[actix_web::test]
    async fn field_count_is_checked_before_name_length() {
        let limits = Limits {
            max_fields: 1,
            max_name_bytes: 1,
        };
        assert_eq!(
            parse_with(URLENCODED, "long=1&b=2", &limits)
                .await
                .unwrap_err(),
            BodyError::TooManyFields
        );
    }

    #[test]
    fn debug_output_hides_form_contents_and_token() {
        let fields = Fields::from_pairs(
            [("email".to_owned(), "ada@example.org".to_owned())],
            &LIMITS,
        )
        .unwrap();
        let parsed = Parsed {
            fields,
            token: Some("secret-token".to_owned()),
        };
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("ada@example.org"), "{shown}");
        assert!(!shown.contains("email"), "{shown}");
        assert!(!shown.contains("secret-token"), "{shown}");
    }
}
