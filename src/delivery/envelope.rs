//! The webhook envelope, exactly as `reference/webhook-payload-contract.txt` describes it:
//! `{"caputchin": {site_key, session_id, game_id, score, duration_ms, verified_at}, "form": {…}}`,
//! with `"test": true` only on a test delivery (SPEC §4).

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::captcha::token::Claims;
use crate::fields::Fields;

/// The fields of the synthetic test submission (SPEC §6).
pub const TEST_FIELDS: [(&str, &str); 2] =
    [("email", "test@example.com"), ("message", "Test delivery")];

#[derive(Serialize)]
struct Real<'a> {
    caputchin: RealMeta<'a>,
    form: &'a Fields,
}

#[derive(Serialize)]
struct RealMeta<'a> {
    site_key: &'a str,
    session_id: &'a str,
    game_id: &'a Option<String>,
    score: &'a Option<serde_json::Number>,
    duration_ms: Option<u64>,
    verified_at: i64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    test: bool,
}

/// The envelope of a real submission: the token's claims, the verification time (epoch ms) and
/// the form's fields in posted order. No `test` key, but for a post from the dashboard's test form
/// (`"test": true`). Written straight from the fields, without an intermediate JSON tree.
pub fn real(claims: &Claims, verified_at: i64, form: &Fields, test: bool) -> Vec<u8> {
    let body = Real {
        caputchin: RealMeta {
            site_key: &claims.site_key,
            session_id: &claims.session_id,
            game_id: &claims.game_id,
            score: &claims.score,
            duration_ms: claims.duration_ms,
            verified_at,
            test,
        },
        form,
    };
    // Strings, integers and numbers only: serialising them cannot fail.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The envelope of a test delivery: a `test_` session id, null game fields, `"test": true`, and
/// the synthetic test fields. Returns the body and its session id.
pub fn test(site_key: &str, now_ms: i64) -> (Vec<u8>, String) {
    let session_id = crate::ids::random_id::<16>("test_");
    let form: Map<String, Value> = TEST_FIELDS
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned())))
        .collect();
    let body = json!({
        "caputchin": {
            "site_key": site_key,
            "session_id": session_id,
            "game_id": null,
            "score": null,
            "duration_ms": null,
            "verified_at": now_ms,
            "test": true,
        },
        "form": Value::Object(form),
    });
    (body.to_string().into_bytes(), session_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_envelope_has_exactly_the_contract_keys_and_types() {
        let mut claims = Claims::new("cpt_pub_x", 5);
        claims.score = Some(847.into());
        let form = Fields::from_pairs(
            [("z", "last?"), ("a", "first?")].map(|(n, v)| (n.to_owned(), v.to_owned())),
            &crate::fields::Limits {
                max_fields: 10,
                max_name_bytes: 10,
            },
        )
        .unwrap();
        let body: Value =
            serde_json::from_slice(&real(&claims, 1_748_640_000_000, &form, false)).unwrap();
        let meta = body["caputchin"].as_object().unwrap();
        let keys: Vec<_> = meta.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "site_key",
                "session_id",
                "game_id",
                "score",
                "duration_ms",
                "verified_at"
            ]
        );
        assert_eq!(meta["verified_at"], json!(1_748_640_000_000_i64));
        assert_eq!(meta["score"], json!(847));
        assert!(meta["game_id"].is_null() && meta["duration_ms"].is_null());
        let form_keys: Vec<_> = body["form"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(form_keys, ["z", "a"], "field order is kept");
        let test_form: Value =
            serde_json::from_slice(&real(&claims, 1_748_640_000_000, &form, true)).unwrap();
        assert_eq!(
            test_form["caputchin"]["test"], true,
            "a test form post is marked"
        );
        assert_eq!(test_form["form"], body["form"]);
        assert_eq!(body.as_object().unwrap().len(), 2);
    }

    #[test]
    fn a_test_envelope_is_marked_and_uses_test_fields() {
        let (bytes, session) = test("cpt_pub_x", 7);
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(session.starts_with("test_"));
        assert_eq!(body["caputchin"]["session_id"], session);
        assert_eq!(body["caputchin"]["test"], true);
        assert!(body["caputchin"]["game_id"].is_null());
        assert_eq!(
            body["form"],
            json!({"email": "test@example.com", "message": "Test delivery"})
        );
    }
}
