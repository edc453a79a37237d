//! Spent challenges held in memory, so that a redeem learns "first attempt or not" without
//! waiting for a database commit. The database keeps every spend too (queued, committed within
//! milliseconds, loaded back at start). Memory is bounded: when it is full, the spends that expire
//! first are forgotten, and challenges expiring no later than those are decided by the database.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// What memory knows about a challenge being redeemed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Not spent before; it is spent now (the caller queues its durable record).
    Fresh,
    /// Spent before.
    Spent,
    /// Memory cannot tell: the database decides.
    Unknown,
}

struct State {
    /// Spent challenges by (expiry in epoch ms, id): a challenge's expiry is signed into it, so
    /// the pair names it, and the earliest expiries are the first to forget.
    spent: BTreeSet<(i64, [u8; 16])>,
    /// Spends of challenges expiring at or before this instant may have been forgotten.
    forgotten_until: i64,
}

/// The latest spent challenges, up to a capacity.
pub struct SpentChallenges {
    capacity: usize,
    state: Mutex<State>,
}

impl SpentChallenges {
    /// A set holding at most `capacity` spends (at least one), starting from `spent` (id,
    /// expiry) as read from the database; what does not fit counts as forgotten.
    pub fn new(capacity: usize, spent: impl IntoIterator<Item = ([u8; 16], i64)>) -> Self {
        let set = SpentChallenges {
            capacity: capacity.max(1),
            state: Mutex::new(State {
                spent: BTreeSet::new(),
                forgotten_until: i64::MIN,
            }),
        };
        {
            let mut state = set.lock();
            for (id, expires_at) in spent {
                set.insert(&mut state, expires_at, id);
            }
        }
        set
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, state: &mut State, expires_at: i64, id: [u8; 16]) {
        state.spent.insert((expires_at, id));
        while state.spent.len() > self.capacity {
            if let Some((forgotten, _)) = state.spent.pop_first() {
                state.forgotten_until = state.forgotten_until.max(forgotten);
            }
        }
    }

    /// Spends the challenge `id`, which expires at `expires_at`, if memory can tell that this is
    /// its first attempt.
    pub fn spend(&self, id: [u8; 16], expires_at: i64) -> Spend {
        let mut state = self.lock();
        if state.spent.contains(&(expires_at, id)) {
            return Spend::Spent;
        }
        if expires_at <= state.forgotten_until {
            return Spend::Unknown;
        }
        self.insert(&mut state, expires_at, id);
        Spend::Fresh
    }

    /// Forgets the spends of challenges that expired before `now_ms` (they are refused as
    /// expired anyway); returns how many.
    pub fn purge_expired(&self, now_ms: i64) -> usize {
        let mut state = self.lock();
        let live = state.spent.split_off(&(now_ms, [0; 16]));
        let purged = state.spent.len();
        state.spent = live;
        purged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_is_fresh_once_then_spent() {
        let set = SpentChallenges::new(10, []);
        assert_eq!(set.spend([1; 16], 100), Spend::Fresh);
        assert_eq!(set.spend([1; 16], 100), Spend::Spent);
        assert_eq!(set.spend([2; 16], 100), Spend::Fresh);
    }

    #[test]
    fn spends_loaded_from_the_database_are_refused() {
        let set = SpentChallenges::new(10, [([7; 16], 100)]);
        assert_eq!(set.spend([7; 16], 100), Spend::Spent);
    }

    #[test]
    fn a_full_set_forgets_the_earliest_expiries_and_hands_those_to_the_database() {
        let set = SpentChallenges::new(2, []);
        assert_eq!(set.spend([1; 16], 100), Spend::Fresh);
        assert_eq!(set.spend([2; 16], 200), Spend::Fresh);
        assert_eq!(set.spend([3; 16], 300), Spend::Fresh);
        // [1] was forgotten: anything expiring by 100 is the database's to decide.
        assert_eq!(set.spend([1; 16], 100), Spend::Unknown);
        assert_eq!(set.spend([9; 16], 50), Spend::Unknown);
        // Later expiries are still decided in memory, right or wrong.
        assert_eq!(set.spend([2; 16], 200), Spend::Spent);
        assert_eq!(set.spend([3; 16], 300), Spend::Spent);
        assert_eq!(set.spend([4; 16], 101), Spend::Fresh);
    }

    #[test]
    fn loading_more_than_the_capacity_keeps_the_latest() {
        let set = SpentChallenges::new(1, [([2; 16], 300), ([1; 16], 100)]);
        assert_eq!(set.spend([2; 16], 300), Spend::Spent);
        assert_eq!(set.spend([1; 16], 100), Spend::Unknown);
        assert_eq!(set.spend([8; 16], 400), Spend::Fresh);
    }

    #[test]
    fn expired_spends_are_purged() {
        let set = SpentChallenges::new(10, [([1; 16], 100), ([2; 16], 200)]);
        assert_eq!(set.purge_expired(150), 1);
        assert_eq!(set.spend([2; 16], 200), Spend::Spent);
        assert_eq!(set.purge_expired(201), 1);
        assert_eq!(set.purge_expired(1_000), 0);
    }
}
