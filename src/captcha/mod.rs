//! The built-in issuer (SPEC §2): Cap-compatible challenges and redeem, signed single-use
//! verification tokens, and their consumption by siteverify and the form endpoint alike.

pub mod cap;
pub mod challenge;
pub mod remote;
pub mod session;
pub mod solve_time;
pub mod spent;
pub mod token;
pub mod verifier;

use std::sync::Arc;

use crate::clock::Clock;
use crate::keys::ServerKey;
use crate::refusal::Refusal;
use crate::store::tokens::TokenUse;
use crate::store::{Store, StoreError};
use cap::ChallengeParams;
use spent::{Spend, SpentChallenges};
use token::Claims;
pub use verifier::{ALL_TOKEN_FIELDS, VerifierKind};

/// How long a challenge may be redeemed after it is issued (Cap's default).
pub const CHALLENGE_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// A challenge ready to send to the widget.
#[derive(Debug, Clone)]
pub struct IssuedChallenge {
    /// The signed challenge token (the widget's PRNG seed).
    pub token: String,
    /// The challenge shape.
    pub params: ChallengeParams,
    /// When it stops being redeemable, epoch ms.
    pub expires_at: i64,
}

/// A challenge token for Caputchin's widget that opened (SPEC §13): the site it names and what
/// it says. Only [`Issuer::open_named`] makes one, so holding one means the MAC was checked.
#[derive(Debug, Clone)]
pub struct NamedChallenge {
    token: String,
    site_key: String,
    challenge: challenge::Challenge,
}

impl NamedChallenge {
    /// The key of the site the challenge was issued for.
    pub fn site_key(&self) -> &str {
        &self.site_key
    }
}

/// A redeem request: the challenge token, one nonce per challenge, and optional client-claimed
/// game metadata that the verification token carries into the envelope.
#[derive(Debug, Clone, Default)]
pub struct RedeemRequest {
    /// The challenge token from the challenge response.
    pub token: String,
    /// One nonce per challenge, in order.
    pub solutions: Vec<u64>,
    /// The game played, if any.
    pub game_id: Option<String>,
    /// The game score, if any.
    pub score: Option<serde_json::Number>,
    /// Time spent in the game, if any.
    pub duration_ms: Option<u64>,
}

/// A successful redeem: the verification token and its expiry.
#[derive(Debug, Clone)]
pub struct Redeemed {
    /// The signed verification token.
    pub token: String,
    /// When it expires, epoch ms (the token's own expiry).
    pub expires_at: i64,
}

/// Why a redeem failed.
#[derive(Debug, thiserror::Error)]
pub enum RedeemError {
    /// The challenge token is not ours, is for another site, expired, or was already tried.
    #[error("challenge invalid or expired")]
    ChallengeInvalid,
    /// The solutions do not solve the challenge.
    #[error("invalid solution")]
    InvalidSolution,
    /// The game metadata cannot be carried (too long).
    #[error("invalid game metadata")]
    InvalidMetadata,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a verification token was not accepted, in the order SPEC §3 checks them.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// Not a token signed by this server.
    #[error("invalid token")]
    Invalid,
    /// Expired, or already consumed.
    #[error("token expired or already used")]
    TimeoutOrDuplicate,
    /// Issued for another site.
    #[error("token issued for another site")]
    SiteMismatch,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl RedeemError {
    /// The refusal Cap's redeem answers (a store failure is logged and answered as ours).
    pub fn refusal(self) -> Refusal {
        match self {
            RedeemError::ChallengeInvalid => Refusal::ChallengeInvalid,
            RedeemError::InvalidSolution => Refusal::InvalidSolution,
            RedeemError::InvalidMetadata => Refusal::BadRequest,
            RedeemError::Store(e) => {
                tracing::error!(error = %e, "redeem failed to record the spent challenge");
                Refusal::Internal
            }
        }
    }
}

impl VerifyError {
    /// The refusal of a token that did not verify; `not_ours` is what the endpoint calls a token
    /// this server did not sign (`invalid-token` on the form, `invalid-input-response` at
    /// siteverify). A store failure fails closed: the token was not recorded as used, so it is
    /// not reported valid.
    pub fn refusal(self, not_ours: Refusal) -> Refusal {
        match self {
            VerifyError::Invalid => not_ours,
            VerifyError::TimeoutOrDuplicate => Refusal::TimeoutOrDuplicate,
            VerifyError::SiteMismatch => Refusal::SiteMismatch,
            VerifyError::Store(e) => {
                tracing::error!(error = %e, "could not record a used verification token");
                Refusal::Internal
            }
        }
    }
}

/// The issuer: signs challenges and tokens, and records single use.
#[derive(Clone)]
pub struct Issuer {
    key: ServerKey,
    store: Store,
    clock: Arc<dyn Clock>,
    spent: Arc<SpentChallenges>,
}

/// Most spent challenges held in memory (about 40 bytes each, so under 3 MiB). Beyond it, the
/// spends expiring first are forgotten, and a redeem of a challenge expiring no later waits for
/// the database to decide, as it would without the memory.
pub const SPENT_IN_MEMORY: usize = 65_536;

impl Issuer {
    /// An issuer with this key, store and clock, holding in memory the spent challenges that the
    /// database still lists as live (at most [`SPENT_IN_MEMORY`]).
    pub fn new(key: ServerKey, store: Store, clock: Arc<dyn Clock>) -> Result<Issuer, StoreError> {
        Issuer::with_memory(key, store, clock, SPENT_IN_MEMORY)
    }

    /// [`Issuer::new`] holding at most `spent_in_memory` spent challenges in memory.
    pub fn with_memory(
        key: ServerKey,
        store: Store,
        clock: Arc<dyn Clock>,
        spent_in_memory: usize,
    ) -> Result<Issuer, StoreError> {
        let now = clock.now_ms();
        let live = store
            .single_use()
            .live_spent_challenges(now, spent_in_memory.saturating_add(1))?;
        Ok(Issuer {
            key,
            store,
            clock,
            spent: Arc::new(SpentChallenges::new(spent_in_memory, live)),
        })
    }

    /// The server key.
    pub fn key(&self) -> &ServerKey {
        &self.key
    }

    /// Issues a challenge of shape `params` for the site with key `site_key`. No I/O: the token itself is signed (SPEC §2).
    pub fn challenge(&self, site_key: &str, params: ChallengeParams) -> IssuedChallenge {
        let expires_at = self.clock.now_ms().saturating_add(CHALLENGE_LIFETIME_MS);
        let token = challenge::issue(
            &self.key,
            site_key,
            &challenge::Challenge {
                id: crate::ids::random_bytes::<16>(),
                expires_at,
                params,
            },
        );
        IssuedChallenge {
            token,
            params,
            expires_at,
        }
    }

    /// Issues a challenge for Caputchin's widget (SPEC §13): like [`Issuer::challenge`], but the
    /// token carries the site key, since `verify/pass` names no site. No I/O. `None` only for a
    /// site key a token cannot carry, which a valid site key never is.
    pub fn challenge_named(
        &self,
        site_key: &str,
        params: ChallengeParams,
    ) -> Option<IssuedChallenge> {
        let expires_at = self.clock.now_ms().saturating_add(CHALLENGE_LIFETIME_MS);
        let token = challenge::issue_named(
            &self.key,
            site_key,
            &challenge::Challenge {
                id: crate::ids::random_bytes::<16>(),
                expires_at,
                params,
            },
        )?;
        Some(IssuedChallenge {
            token,
            params,
            expires_at,
        })
    }

    /// Opens a token made by [`Issuer::challenge_named`]; `None` when this server did not sign
    /// it (expiry and single use are checked by [`Issuer::redeem_named`]).
    pub fn open_named(&self, token: &str) -> Option<NamedChallenge> {
        let (site_key, challenge) = challenge::open_named(&self.key, token)?;
        Some(NamedChallenge {
            token: token.to_owned(),
            site_key,
            challenge,
        })
    }

    /// Redeems a solved challenge. The challenge is spent on the first attempt, right or wrong
    /// (as Cap does); that spend is the one database write.
    pub async fn redeem(
        &self,
        site_key: &str,
        request: RedeemRequest,
    ) -> Result<Redeemed, RedeemError> {
        let opened = challenge::open(&self.key, site_key, &request.token)
            .ok_or(RedeemError::ChallengeInvalid)?;
        self.redeem_opened(site_key, opened, request).await
    }

    /// Redeems a challenge of Caputchin's widget that [`Issuer::open_named`] opened with these
    /// solutions, exactly as [`Issuer::redeem`] does a Cap challenge; the token carries no game
    /// metadata (SPEC §13).
    pub async fn redeem_named(
        &self,
        named: NamedChallenge,
        solutions: Vec<u64>,
    ) -> Result<Redeemed, RedeemError> {
        let request = RedeemRequest {
            token: named.token,
            solutions,
            ..RedeemRequest::default()
        };
        self.redeem_opened(&named.site_key, named.challenge, request)
            .await
    }

    /// Checks the expiry, spends the challenge, then checks the solutions and signs the token.
    async fn redeem_opened(
        &self,
        site_key: &str,
        opened: challenge::Challenge,
        request: RedeemRequest,
    ) -> Result<Redeemed, RedeemError> {
        let now = self.clock.now_ms();
        if opened.expires_at <= now {
            return Err(RedeemError::ChallengeInvalid);
        }
        let (id, expires_at) = (opened.id, opened.expires_at);
        // Memory answers at once and the durable record follows within milliseconds (README,
        // "How verification works"); when memory cannot tell, the database decides first.
        let fresh = match self.spent.spend(id, expires_at) {
            Spend::Fresh => {
                self.store.queue_spent_challenge(id, expires_at);
                true
            }
            Spend::Spent => false,
            // After the queue: a spend forgotten by memory may still be waiting there.
            Spend::Unknown => {
                self.store
                    .single_use()
                    .spend_challenge(id, expires_at)
                    .await?
            }
        };
        if !fresh {
            return Err(RedeemError::ChallengeInvalid);
        }
        if !cap::verify_solutions(&request.token, opened.params, &request.solutions) {
            return Err(RedeemError::InvalidSolution);
        }
        let mut claims = Claims::new(site_key, now);
        claims.game_id = request.game_id;
        claims.score = request.score;
        claims.duration_ms = request.duration_ms;
        let token = token::encode(&self.key, &claims).ok_or(RedeemError::InvalidMetadata)?;
        Ok(Redeemed {
            token,
            expires_at: claims.expires_at,
        })
    }

    /// Consumes a verification token for `site_key`: checks, in SPEC §3's order, that it is ours,
    /// not expired or spent, and issued for this site, then records it as used. A token consumed
    /// here is refused everywhere afterwards (siteverify and the form endpoint share this).
    pub async fn consume(&self, site_key: &str, token: &str) -> Result<Claims, VerifyError> {
        let claims = token::decode(&self.key, token).map_err(|_| VerifyError::Invalid)?;
        if claims.expires_at <= self.clock.now_ms() {
            return Err(VerifyError::TimeoutOrDuplicate);
        }
        let mismatch = claims.site_key != site_key;
        let session_id = claims.session_id.clone();
        let expires_at = claims.expires_at;
        // One statement either way: a mismatched token is only looked up (a spent one is reported
        // as spent first, SPEC §3's order), a matching one is recorded unless it already was.
        let used = self
            .store
            .single_use()
            .use_token(session_id, expires_at, !mismatch)
            .await?;
        match used {
            TokenUse::Recorded => Ok(claims),
            TokenUse::AlreadyUsed => Err(VerifyError::TimeoutOrDuplicate),
            TokenUse::Unused => Err(VerifyError::SiteMismatch),
        }
    }

    /// Removes expired single-use records.
    pub async fn purge_expired(&self) -> Result<usize, StoreError> {
        let now = self.clock.now_ms();
        self.spent.purge_expired(now);
        self.store.single_use().purge_expired(now).await
    }
}
