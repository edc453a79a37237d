//! The Cap proof-of-work, format 1 (CAP-PROTOCOL §2): the seeded PRNG that derives each
//! challenge's salt and target from the challenge token, and the check of a solution nonce.

use sha2::{Digest, Sha256};

/// Length of each salt in hex characters (Cap's `s`; CAP-PROTOCOL §4 default).
pub const SALT_CHARS: u8 = 32;
/// Most challenges a site may ask for.
pub const MAX_CHALLENGE_COUNT: u16 = 500;
/// Highest difficulty (hex nibbles) a site may ask for.
pub const MAX_DIFFICULTY: u8 = 8;
/// Default number of challenges per verification.
pub const DEFAULT_CHALLENGE_COUNT: u16 = 32;
/// Default difficulty (hex nibbles per challenge).
pub const DEFAULT_DIFFICULTY: u8 = 4;

/// The shape of one verification's work: `c` challenges of `s`-char salts and `d`-nibble targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeParams {
    /// Number of challenges (`c`).
    pub count: u16,
    /// Salt length in hex characters (`s`).
    pub size: u8,
    /// Target length in hex characters (`d`).
    pub difficulty: u8,
}

impl ChallengeParams {
    /// Params with the standard salt size; `None` when count or difficulty is out of range.
    pub fn new(count: u16, difficulty: u8) -> Option<ChallengeParams> {
        ((1..=MAX_CHALLENGE_COUNT).contains(&count) && (1..=MAX_DIFFICULTY).contains(&difficulty))
            .then_some(ChallengeParams {
                count,
                size: SALT_CHARS,
                difficulty,
            })
    }
}

impl Default for ChallengeParams {
    fn default() -> Self {
        ChallengeParams {
            count: DEFAULT_CHALLENGE_COUNT,
            size: SALT_CHARS,
            difficulty: DEFAULT_DIFFICULTY,
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 32-bit FNV-1a over the seed's bytes (the seed is ASCII, so bytes = UTF-16 code units).
pub fn fnv1a32(seed: &[u8]) -> u32 {
    seed.iter().fold(0x811c_9dc5_u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Appends `len` hex characters of Cap's PRNG seeded with `seed` to `out`.
pub fn prng_into(seed: &[u8], len: usize, out: &mut Vec<u8>) {
    let mut state = fnv1a32(seed);
    let mut remaining = len;
    while remaining > 0 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let take = remaining.min(8);
        for k in 0..take {
            let nibble = (state >> (28 - 4 * k)) & 0xf;
            out.push(HEX[nibble as usize]);
        }
        remaining -= take;
    }
}

/// Cap's PRNG as a string: `len` lowercase hex characters.
pub fn prng(seed: &str, len: usize) -> String {
    let mut out = Vec::with_capacity(len);
    prng_into(seed.as_bytes(), len, &mut out);
    // Only ASCII hex digits were pushed.
    String::from_utf8(out).unwrap_or_default()
}

/// Derives challenge `i` (1-based) of a token: its salt and target, as ASCII hex.
pub fn challenge_pair(token: &str, i: u32, params: ChallengeParams) -> (Vec<u8>, Vec<u8>) {
    let mut seed = Vec::with_capacity(token.len() + 12);
    seed.extend_from_slice(token.as_bytes());
    let mut buf = [0u8; 20];
    seed.extend_from_slice(decimal(u64::from(i), &mut buf));
    let mut salt = Vec::with_capacity(usize::from(params.size));
    prng_into(&seed, usize::from(params.size), &mut salt);
    seed.push(b'd');
    let mut target = Vec::with_capacity(usize::from(params.difficulty));
    prng_into(&seed, usize::from(params.difficulty), &mut target);
    (salt, target)
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

/// True when `hex(sha256(salt + decimal(nonce)))` starts with `target`.
pub fn is_valid_nonce(salt: &[u8], target: &[u8], nonce: u64) -> bool {
    if target.len() > 64 {
        return false;
    }
    let mut buf = [0u8; 20];
    let digest = Sha256::new()
        .chain_update(salt)
        .chain_update(decimal(nonce, &mut buf))
        .finalize();
    target.iter().enumerate().all(|(k, &t)| {
        let byte = digest[k / 2];
        let nibble = if k % 2 == 0 { byte >> 4 } else { byte & 0x0f };
        hex_value(t) == Some(nibble)
    })
}

/// Writes `n` in plain base 10 into the end of `buf` and returns those digits.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[start..]
}

/// Checks a full set of solutions: exactly `count` nonces, each valid for its challenge.
pub fn verify_solutions(token: &str, params: ChallengeParams, solutions: &[u64]) -> bool {
    if solutions.len() != usize::from(params.count) {
        return false;
    }
    solutions.iter().enumerate().all(|(idx, &nonce)| {
        let i = u32::try_from(idx + 1).unwrap_or(u32::MAX);
        let (salt, target) = challenge_pair(token, i, params);
        is_valid_nonce(&salt, &target, nonce)
    })
}

/// Finds the smallest valid nonce for one challenge, as the widget does. For tests and the
/// benchmark; at the default difficulty this takes about 65,000 hashes.
pub fn solve_one(salt: &[u8], target: &[u8]) -> u64 {
    (0..u64::MAX)
        .find(|&n| is_valid_nonce(salt, target, n))
        .unwrap_or(0)
}

/// Solves every challenge of a token.
pub fn solve(token: &str, params: ChallengeParams) -> Vec<u64> {
    (1..=u32::from(params.count))
        .map(|i| {
            let (salt, target) = challenge_pair(token, i, params);
            solve_one(&salt, &target)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const T1: &str = "0123456789abcdef0123456789abcdef0123456789abcdef01";
    const T2: &str = "e5ad0e2ea6655bb5c8af9ed5ce967cbaa9ace4ec75345aa481";
    const T2_SOLUTIONS: [u64; 50] = [
        3060, 99772, 19448, 246900, 17099, 38344, 49757, 6071, 56204, 5733, 107999, 93812, 187654,
        2753, 37942, 46445, 22866, 229512, 61464, 35006, 4950, 28610, 27291, 146807, 8882, 77302,
        74953, 44113, 21453, 88561, 7678, 9041, 99236, 7383, 7158, 67832, 34665, 36895, 118960,
        199404, 54777, 46726, 15781, 27891, 210027, 80524, 32994, 20532, 61129, 41483,
    ];

    fn p(count: u16, size: u8, difficulty: u8) -> ChallengeParams {
        ChallengeParams {
            count,
            size,
            difficulty,
        }
    }

    fn s(v: &[u8]) -> &str {
        std::str::from_utf8(v).unwrap()
    }

    #[test]
    fn fnv_and_prng_match_the_protocol_vectors() {
        assert_eq!(format!("{:08x}", fnv1a32(b"")), "811c9dc5");
        assert_eq!(format!("{:08x}", fnv1a32(b"a")), "e40c292c");
        assert_eq!(prng("", 24), "4622a6774f65af21aabfbe41");
        assert_eq!(prng("", 0), "");
        assert_eq!(
            format!("{:08x}", fnv1a32(format!("{T1}1").as_bytes())),
            "76137c29"
        );
        assert_eq!(
            format!("{:08x}", fnv1a32(format!("{T1}1d").as_bytes())),
            "2dacad37"
        );
    }

    #[test]
    fn t1_default_size_vectors_derive_and_verify() {
        let params = p(3, 32, 4);
        let expected = [
            ("2b5c4ca2fbc3e5066b0fb0573da6c475", "b948", 20759),
            ("a252484e802441830a9094a918b2adcb", "105e", 12490),
            ("7d5187daf8f6c0ef3d8d23daa733cb01", "6399", 71352),
        ];
        for (i, (salt, target, nonce)) in expected.iter().enumerate() {
            let (ds, dt) = challenge_pair(T1, i as u32 + 1, params);
            assert_eq!(s(&ds), *salt);
            assert_eq!(s(&dt), *target);
            assert!(is_valid_nonce(&ds, &dt, *nonce));
            assert_eq!(
                solve_one(&ds, &dt),
                *nonce,
                "smallest nonce of challenge {}",
                i + 1
            );
        }
        assert!(verify_solutions(T1, params, &[20759, 12490, 71352]));
    }

    #[test]
    fn t1_odd_lengths_and_short_salts() {
        let params = p(2, 7, 5);
        let (s1, t1) = challenge_pair(T1, 1, params);
        let (s2, t2) = challenge_pair(T1, 2, params);
        assert_eq!((s(&s1), s(&t1)), ("2b5c4ca", "b9483"));
        assert_eq!((s(&s2), s(&t2)), ("a252484", "105e7"));
        assert!(verify_solutions(T1, params, &[634795, 86496]));
        assert!(!verify_solutions(T1, params, &[634795, 86495]));

        let params = p(1, 20, 3);
        let (s1, t1) = challenge_pair(T1, 1, params);
        assert_eq!((s(&s1), s(&t1)), ("2b5c4ca2fbc3e5066b0f", "b94"));
        assert!(verify_solutions(T1, params, &[10413]));
    }

    #[test]
    fn t2_full_redeem_fixture_verifies() {
        let params = p(50, 32, 4);
        let (s1, t1) = challenge_pair(T2, 1, params);
        assert_eq!(
            (s(&s1), s(&t1)),
            ("46766851e4fdb00f0d73575194b1d73d", "f117")
        );
        let (s2, t2) = challenge_pair(T2, 2, params);
        assert_eq!(
            (s(&s2), s(&t2)),
            ("85fccddf94a35c7c1ab8deaa2cde5d9c", "e46a")
        );
        let (s50, t50) = challenge_pair(T2, 50, params);
        assert_eq!(
            (s(&s50), s(&t50)),
            ("bff601f086cffc9452f5477ab9553497", "bf06")
        );
        assert!(verify_solutions(T2, params, &T2_SOLUTIONS));
    }

    #[test]
    fn wrong_solution_sets_fail() {
        let params = p(50, 32, 4);
        assert!(!verify_solutions(T2, params, &[0; 50]));
        assert!(!verify_solutions(T2, params, &T2_SOLUTIONS[..49]));
        let mut extra = T2_SOLUTIONS.to_vec();
        extra.push(1);
        assert!(!verify_solutions(T2, params, &extra));
        let mut one_off = T2_SOLUTIONS;
        one_off[17] += 1;
        assert!(!verify_solutions(T2, params, &one_off));
    }

    #[test]
    fn difficulty_zero_accepts_anything_and_bad_targets_never_match() {
        assert!(is_valid_nonce(b"abc", b"", 0));
        assert!(!is_valid_nonce(b"abc", b"zz", 0));
        assert!(!is_valid_nonce(b"abc", &[b'0'; 65], 0));
    }

    #[test]
    fn decimal_matches_to_string() {
        let mut buf = [0u8; 20];
        for n in [0, 7, 10, 246900, u64::MAX] {
            assert_eq!(decimal(n, &mut buf), n.to_string().as_bytes());
        }
    }

    #[test]
    fn params_are_range_checked() {
        assert!(ChallengeParams::new(0, 4).is_none());
        assert!(ChallengeParams::new(501, 4).is_none());
        assert!(ChallengeParams::new(50, 0).is_none());
        assert!(ChallengeParams::new(50, 9).is_none());
        assert_eq!(ChallengeParams::new(50, 4).unwrap().size, 32);
    }
}
