//! Rate limits of the public endpoints: the form's (SPEC §3) and the Cap challenge, redeem and
//! siteverify endpoints' own budgets, each at most N requests per client address (SPEC §9) per
//! site per minute, counted in memory only (an address is never stored).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use actix_web::HttpRequest;

use crate::web::{WebState, client_addr};

const WINDOW_MS: i64 = 60_000;

/// The start of the one-minute window holding `now_ms`.
fn window_of(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(WINDOW_MS)
}

#[derive(Default)]
struct Windows {
    /// The window (start, epoch ms) the map is counting.
    current: i64,
    /// Per client IP, per site key: looked up without allocating, so a post allocates only when
    /// it is the first of its (IP, site) pair in the window.
    counts: HashMap<IpAddr, HashMap<Box<str>, u32>>,
}

/// Fixed one-minute windows per (site, IP). Memory is bounded by the posts of one minute: the
/// map is cleared when a new window starts.
pub struct RateLimiter {
    per_minute: u32,
    windows: Mutex<Windows>,
}

impl RateLimiter {
    /// A limiter allowing `per_minute` posts per client IP per site per minute.
    pub fn new(per_minute: u32) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(Windows::default()),
        }
    }

    /// Counts one post; `Err(retry_after_seconds)` when over the limit.
    pub fn check(&self, site_key: &str, ip: IpAddr, now_ms: i64) -> Result<(), u64> {
        let window = window_of(now_ms);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.current != window {
            windows.current = window;
            windows.counts.clear();
        }
        let sites = windows.counts.entry(ip).or_default();
        let count = match sites.get_mut(site_key) {
            Some(count) => count,
            None => sites.entry(site_key.into()).or_insert(0),
        };
        if *count >= self.per_minute {
            let remaining_ms = window + WINDOW_MS - now_ms;
            return Err(u64::try_from((remaining_ms + 999) / 1000)
                .unwrap_or(60)
                .max(1));
        }
        *count += 1;
        Ok(())
    }

    /// Counts one request of `req` for `site_key` by its client address's bucket
    /// ([`client_addr::bucket`]; a request with no address, which TCP always has, is not
    /// counted); `Err(retry_after_seconds)` when over.
    pub fn check_request(
        &self,
        state: &WebState,
        req: &HttpRequest,
        site_key: &str,
    ) -> Result<(), u64> {
        match client_addr::bucket_of_request(req, &state.settings.trusted_proxies) {
            Some(ip) => self.check(site_key, ip, state.clock.now_ms()),
            None => Ok(()),
        }
    }

    /// Gives back one request counted by [`RateLimiter::check_request`] in the current window
    /// (for requests that, once answered, should not have counted).
    pub fn refund_request(&self, state: &WebState, req: &HttpRequest, site_key: &str) {
        let Some(ip) = client_addr::bucket_of_request(req, &state.settings.trusted_proxies) else {
            return;
        };
        let window = window_of(state.clock.now_ms());
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.current == window
            && let Some(count) = windows
                .counts
                .get_mut(&ip)
                .and_then(|sites| sites.get_mut(site_key))
        {
            *count = count.saturating_sub(1);
        }
    }
}

/// The budgets of the public endpoints, one limiter each.
pub struct RateLimits {
    /// `POST /f/{key}`.
    pub form: RateLimiter,
    /// `POST /v1/cap/{key}/challenge`.
    pub challenge: RateLimiter,
    /// `POST /v1/cap/{key}/redeem`.
    pub redeem: RateLimiter,
    /// `POST /v1/siteverify` and its aliases.
    pub siteverify: RateLimiter,
    /// The management API, per access token (counted under the token's id, with no address).
    pub api: RateLimiter,
}

impl RateLimits {
    /// The limiters of these settings.
    pub fn new(settings: &crate::config::Settings) -> RateLimits {
        RateLimits {
            form: RateLimiter::new(settings.rate_limit_per_min),
            challenge: RateLimiter::new(settings.challenge_rate_limit_per_min),
            redeem: RateLimiter::new(settings.redeem_rate_limit_per_min),
            siteverify: RateLimiter::new(settings.siteverify_rate_limit_per_min),
            api: RateLimiter::new(settings.api_rate_limit_per_min),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_applies_per_site_and_ip_and_resets_each_minute() {
        let limiter = RateLimiter::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let t = 1_000 * WINDOW_MS + 15_000;
        assert!(limiter.check("s1", a, t).is_ok());
        assert!(limiter.check("s1", a, t).is_ok());
        assert_eq!(limiter.check("s1", a, t), Err(45));
        assert!(limiter.check("s2", a, t).is_ok());
        assert!(limiter.check("s1", b, t).is_ok());
        assert!(limiter.check("s1", a, t + 45_000).is_ok());
    }
}
