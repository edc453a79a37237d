//! Spent challenges held in memory, so that a redeem learns "first attempt or not" without
//! waiting for a database commit. The database keeps every spend too (queued, committed within
//! milliseconds, loaded back at start); memory is bounded, and while it cannot hold every live
//! spend the database decides instead.

use std::collections::HashMap;
use std::sync::Mutex;

/// What memory knows about a challenge being redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Not spent before; it is spent now (the caller queues its durable record).
    Fresh,
    /// Spent before.
    Spent,
    /// Memory cannot tell (it was full): the database decides.
    Unknown,
}

struct State {
    /// Spent challenge ids and when each challenge expires (epoch ms).
    ids: HashMap<[u8; 16], i64>,
    /// Until this instant (epoch ms) some live spends are in the database only.
    incomplete_until: i64,
}

/// The spent challenges that have not expired, up to a capacity.
pub struct SpentChallenges {
    capacity: usize,
    state: Mutex<State>,
}

impl SpentChallenges {
    /// A set holding at most `capacity` spends, starting from `spent` (id, expiry) as read from
    /// the database. Spends beyond the capacity leave memory incomplete until they expire.
    pub fn new(capacity: usize, spent: impl IntoIterator<Item = ([u8; 16], i64)>) -> Self {
        let mut state = State {
            ids: HashMap::new(),
            incomplete_until: i64::MIN,
        };
        for (id, expires_at) in spent {
            if state.ids.len() < capacity {
                state.ids.insert(id, expires_at);
            } else {
                state.incomplete_until = state.incomplete_until.max(expires_at);
            }
        }
        SpentChallenges {
            capacity,
            state: Mutex::new(state),
        }
    }

    /// Spends the challenge `id` (expiring at `expires_at`) if memory can tell it is fresh.
    pub fn spend(&self, id: [u8; 16], expires_at: i64, now_ms: i64) -> Spend {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.ids.contains_key(&id) {
            return Spend::Spent;
        }
        if now_ms < state.incomplete_until || state.ids.len() >= self.capacity {
            // The database decides, and if this is a first attempt the spend lives there only:
            // until it expires, memory is incomplete.
            state.incomplete_until = state.incomplete_until.max(expires_at);
            return Spend::Unknown;
        }
        state.ids.insert(id, expires_at);
        Spend::Fresh
    }

    /// Forgets the spends of challenges that expired before `now_ms` (they are refused as
    /// expired anyway); returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> usize {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = state.ids.len();
        state.ids.retain(|_, expires_at| *expires_at >= now_ms);
        before - state.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_fresh_once_then_spent() {
        let set = SpentChallenges::new(10, []);
        assert_eq!(set.spend([1; 16], 100, 0), Spend::Fresh);
        assert_eq!(set.spend([1; 16], 100, 0), Spend::Spent);
        assert_eq!(set.spend([2; 16], 100, 0), Spend::Fresh);
    }

    #[test]
    fn spends_loaded_from_the_database_are_refused() {
        let set = SpentChallenges::new(10, [([7; 16], 100)]);
        assert_eq!(set.spend([7; 16], 100, 0), Spend::Spent);
    }

    #[test]
    fn a_full_set_hands_the_decision_to_the_database_until_those_spends_expire() {
        let set = SpentChallenges::new(2, []);
        assert_eq!(set.spend([1; 16], 100, 0), Spend::Fresh);
        assert_eq!(set.spend([2; 16], 100, 0), Spend::Fresh);
        assert_eq!(set.spend([3; 16], 500, 0), Spend::Unknown);
        // Memory still refuses what it holds, and cannot vouch for anything else.
        assert_eq!(set.spend([1; 16], 100, 10), Spend::Spent);
        assert_eq!(set.spend([4; 16], 100, 10), Spend::Unknown);
        // Once the first two expire there is room, but [3] lives until 500 in the database only.
        assert_eq!(set.purge_expired(200), 2);
        assert_eq!(set.spend([1; 16], 100, 200), Spend::Unknown);
        assert_eq!(set.spend([5; 16], 900, 500), Spend::Fresh);
        assert_eq!(set.spend([5; 16], 900, 501), Spend::Spent);
    }

    #[test]
    fn loading_more_than_the_capacity_leaves_memory_incomplete_until_the_last_expiry() {
        let set = SpentChallenges::new(1, [([2; 16], 300), ([1; 16], 100)]);
        assert_eq!(set.spend([2; 16], 300, 50), Spend::Spent);
        assert_eq!(set.spend([1; 16], 100, 50), Spend::Unknown);
        // An answer the database gives may leave a spend there only: [9] keeps memory
        // incomplete until it expires too.
        assert_eq!(set.spend([9; 16], 400, 60), Spend::Unknown);
        assert_eq!(set.purge_expired(301), 1);
        assert_eq!(set.spend([8; 16], 1000, 400), Spend::Fresh);
        assert_eq!(set.spend([8; 16], 1000, 401), Spend::Spent);
    }
}
