//! Extractors of the dashboard's requests: the signed-in account ([`SignedIn`]), a form read the
//! way the dashboard reads forms ([`DashboardForm`]), and both in the order a post needs them
//! ([`SignedInForm`]). What they refuse is answered with a [`PageError`] page.

use std::collections::HashMap;

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq as _;

use crate::accounts;
use crate::web::WebState;
use crate::web::dashboard::{Nav, PageError, auth, blocking};

/// The account signed in by the request's session cookie. A request without a live session is
/// refused with [`PageError::NotSignedIn`] (the redirect to the login page); as
/// `Option<SignedIn>` it is `None` instead.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// Account id.
    pub id: i64,
    /// Email.
    pub email: String,
    /// The CSRF token bound to this session.
    pub csrf: String,
    session_hash: [u8; 32],
}

impl SignedIn {
    /// The navigation bar for this account, with `section` highlighted.
    pub fn nav(&self, section: &'static str) -> Nav {
        Nav {
            email: Some(self.email.clone()),
            csrf: self.csrf.clone(),
            section,
        }
    }

    /// Accepts a form whose `csrf` field is `given` when it is this session's token (compared in
    /// constant time); otherwise refuses it with [`PageError::Csrf`] in the `section` of the
    /// navigation.
    pub fn check_csrf(&self, given: &str, section: &'static str) -> Result<(), PageError> {
        if bool::from(given.as_bytes().ct_eq(self.csrf.as_bytes())) {
            Ok(())
        } else {
            Err(PageError::Csrf(self.nav(section)))
        }
    }

    /// The hash of the session's id, under which the session is stored.
    pub fn session_hash(&self) -> &[u8; 32] {
        &self.session_hash
    }

    /// The account of the request's session, if the session is live; a failed lookup counts as
    /// none.
    async fn of(req: &HttpRequest) -> Option<SignedIn> {
        let state = req.app_data::<web::Data<WebState>>()?;
        let value = req.cookie(auth::session_cookie(state))?.value().to_owned();
        if value.len() != 64 {
            return None;
        }
        let hash = auth::session_hash(&value);
        let now = state.clock.now_ms();
        let (id, email) = blocking(state, move |s| {
            accounts::session_account(&s.store, &hash, now)
        })
        .await??;
        Some(SignedIn {
            id,
            email,
            csrf: auth::derive_csrf(state, b"session", &value),
            session_hash: hash,
        })
    }
}

impl FromRequest for SignedIn {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<SignedIn, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { SignedIn::of(&req).await.ok_or(PageError::NotSignedIn) })
    }
}

/// An urlencoded form body as `F`. It is read as `web::Form` reads it (the same answers to a
/// wrong content type, an oversized or a late body); then, as the dashboard has always read its
/// fields, a field given twice keeps its last value and a missing one takes its default (so `F`
/// has `#[serde(default)]`, an `Option` for a field whose absence means something, and
/// [`checkbox`] for checkboxes).
#[derive(Debug)]
pub struct DashboardForm<F>(pub F);

impl<F: DeserializeOwned + 'static> FromRequest for DashboardForm<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<DashboardForm<F>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let fields = web::Form::<HashMap<String, String>>::from_request(req, payload);
        Box::pin(async move {
            let web::Form(fields) = fields.await?;
            // An object of strings: serde fills `F` from it by field name.
            let object = fields
                .into_iter()
                .map(|(name, value)| (name, serde_json::Value::String(value)))
                .collect();
            serde_json::from_value(serde_json::Value::Object(object))
                .map(DashboardForm)
                .map_err(actix_web::error::ErrorBadRequest)
        })
    }
}

/// A form posted by the signed-in account. The whole form is read first and the session looked up
/// after, so that a bad or late body gets the same answer with or without a session; the handler
/// then checks the CSRF token ([`SignedIn::check_csrf`]) where its order of answers puts it.
#[derive(Debug)]
pub struct SignedInForm<F>(pub SignedIn, pub F);

impl<F: DeserializeOwned + 'static> FromRequest for SignedInForm<F> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<SignedInForm<F>, actix_web::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let form = DashboardForm::<F>::from_request(req, payload);
        let req = req.clone();
        Box::pin(async move {
            let DashboardForm(form) = form.await?;
            let account = SignedIn::of(&req).await.ok_or(PageError::NotSignedIn)?;
            Ok(SignedInForm(account, form))
        })
    }
}

/// For a checkbox field (`#[serde(default, deserialize_with = "checkbox")]`): a browser sends it
/// only when it is checked, whatever its value, so present is true and absent the default, false.
pub fn checkbox<'de, D: serde::Deserializer<'de>>(field: D) -> Result<bool, D::Error> {
    <serde::de::IgnoredAny as serde::Deserialize>::deserialize(field)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    struct Sample {
        csrf: String,
        confirm: Option<String>,
        #[serde(deserialize_with = "checkbox")]
        enabled: bool,
    }

    async fn read(body: &'static str) -> Sample {
        let (req, mut payload) = actix_web::test::TestRequest::post()
            .insert_header(("Content-Type", "application/x-www-form-urlencoded"))
            .set_payload(body)
            .to_http_parts();
        DashboardForm::<Sample>::from_request(&req, &mut payload)
            .await
            .unwrap()
            .0
    }

    #[actix_web::test]
    async fn a_repeated_field_keeps_its_last_value_and_a_missing_one_its_default() {
        let repeated = read("csrf=a&csrf=b&enabled=&confirm=&other=x").await;
        assert_eq!(repeated.csrf, "b");
        assert!(repeated.enabled, "a checkbox is checked by its presence");
        assert_eq!(repeated.confirm.as_deref(), Some(""));

        let empty = read("").await;
        assert_eq!(empty.csrf, "");
        assert!(!empty.enabled);
        assert_eq!(empty.confirm, None);
    }
}
