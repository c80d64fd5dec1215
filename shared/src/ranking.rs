//! Fractional ordering keys: a lead's position in a pipeline column (and a stage's in the board).
//!
//! A key is a string over `0-9A-Za-z` (ASCII order) that never ends in `0`, so another key always
//! fits between any two. Moving an item writes one new key between its new neighbours; nothing
//! else in the column is renumbered.
//!
//! Between two neighbours the key is their midpoint. At either open end of a column (a new lead
//! appended to its stage, a card moved to the top) halving the gap would grow keys by a character
//! every five or six steps, and every new lead is appended to its first stage; so the ends step by
//! one unit in the fourth base-62 digit instead: some seven million appends (or prepends) fit in
//! four or five characters.

use thiserror::Error;

const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE: usize = 62;
/// Open ends step in this digit position (see the module doc).
const END_STEP_DIGITS: usize = 4;
/// Keys beyond this are refused as input. Inserting again and again at the same spot grows a key
/// by about one character per five inserts, so this allows some five thousand such moves.
pub const MAX_KEY_LEN: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RankError {
    #[error("position key {0:?} is not a valid key")]
    InvalidKey(String),
    #[error("position keys are out of order: {0:?} is not before {1:?}")]
    OutOfOrder(String, String),
}

fn digit(c: u8) -> Option<usize> {
    ALPHABET.iter().position(|&a| a == c)
}

/// Whether `key` is a well-formed ordering key.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|c| digit(c).is_some())
        && !key.ends_with('0')
}

/// A key strictly between `before` and `after` (either may be absent: the start or end of the
/// column). Fails only on malformed keys or `before >= after`.
pub fn between(before: Option<&str>, after: Option<&str>) -> Result<String, RankError> {
    for key in [before, after].into_iter().flatten() {
        if !is_valid_key(key) {
            return Err(RankError::InvalidKey(key.to_string()));
        }
    }
    if let (Some(a), Some(b)) = (before, after) {
        if a >= b {
            return Err(RankError::OutOfOrder(a.to_string(), b.to_string()));
        }
    }
    let low: Vec<usize> = before.unwrap_or("").bytes().filter_map(digit).collect();
    let high: Option<Vec<usize>> = after.map(|b| b.bytes().filter_map(digit).collect());
    let digits = match (before, &high) {
        (Some(_), None) => step_up(&low),
        (None, Some(high)) => step_down(high).unwrap_or_else(|| midpoint(&[], Some(high))),
        _ => midpoint(&low, high.as_deref()),
    };
    Ok(digits.into_iter().map(|d| ALPHABET[d] as char).collect())
}

/// The key one unit (in digit `max(len, END_STEP_DIGITS)`) above `low`.
fn step_up(low: &[usize]) -> Vec<usize> {
    let mut digits = low.to_vec();
    digits.resize(low.len().max(END_STEP_DIGITS), 0);
    for position in (0..digits.len()).rev() {
        if digits[position] + 1 < BASE {
            digits[position] += 1;
            return trim_zeros(digits);
        }
        digits[position] = 0;
    }
    // Every digit was the largest: only a longer key is above it.
    let mut longer = low.to_vec();
    longer.push(BASE / 2);
    longer
}

/// The key one unit (in digit `max(len, END_STEP_DIGITS)`) below `high`, unless that is empty.
fn step_down(high: &[usize]) -> Option<Vec<usize>> {
    let mut digits = high.to_vec();
    digits.resize(high.len().max(END_STEP_DIGITS), 0);
    for position in (0..digits.len()).rev() {
        if digits[position] > 0 {
            digits[position] -= 1;
            let digits = trim_zeros(digits);
            return (!digits.is_empty()).then_some(digits);
        }
        digits[position] = BASE - 1;
    }
    None
}

/// Trailing zeros do not change a key's place in the order; keys never end with one.
fn trim_zeros(mut digits: Vec<usize>) -> Vec<usize> {
    while digits.last() == Some(&0) {
        digits.pop();
    }
    digits
}

/// Digits strictly between `low` (read as padded with zeros) and `high` (or the end of the space).
fn midpoint(low: &[usize], high: Option<&[usize]>) -> Vec<usize> {
    let low_at = |i: usize| low.get(i).copied().unwrap_or(0);
    // Skip the prefix both share; the answer shares it too.
    if let Some(high) = high {
        let mut shared = 0;
        while shared < high.len() && low_at(shared) == high[shared] {
            shared += 1;
        }
        if shared > 0 {
            let mut out = high[..shared].to_vec();
            let rest_low = if low.len() > shared {
                &low[shared..]
            } else {
                &[]
            };
            out.extend(midpoint(rest_low, Some(&high[shared..])));
            return out;
        }
    }
    let first_low = low_at(0);
    let first_high = high.and_then(|h| h.first().copied()).unwrap_or(BASE);
    if first_high - first_low > 1 {
        return vec![(first_low + first_high) / 2];
    }
    // Adjacent first digits: a longer `high` can be cut to its first digit, which is above `low`
    // and (as keys never end in 0) below `high`; otherwise keep `low`'s digit and recurse.
    if let Some(high) = high {
        if high.len() > 1 {
            return vec![high[0]];
        }
    }
    let mut out = vec![first_low];
    let rest_low = if low.len() > 1 { &low[1..] } else { &[] };
    out.extend(midpoint(rest_low, None));
    out
}

/// `count` keys in ascending order, spread over the key space (for seeding default stages).
pub fn evenly_spaced(count: usize) -> Vec<String> {
    let mut keys = Vec::with_capacity(count);
    if count < BASE - 1 {
        for i in 1..=count {
            keys.push((ALPHABET[i * BASE / (count + 1)] as char).to_string());
        }
    } else {
        let mut last: Option<String> = None;
        for _ in 0..count {
            let key =
                between(last.as_deref(), None).expect("keys made here are valid and ascending");
            keys.push(key.clone());
            last = Some(key);
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn first_key_is_the_middle() {
        assert_eq!(between(None, None).unwrap(), "V");
    }

    #[test]
    fn keys_fit_between_neighbours() {
        assert_eq!(between(Some("a"), Some("c")).unwrap(), "b");
        let k = between(Some("a"), Some("b")).unwrap();
        assert!("a" < k.as_str() && k.as_str() < "b", "{k}");
        let k = between(Some("a"), Some("a1")).unwrap();
        assert!("a" < k.as_str() && k.as_str() < "a1", "{k}");
        let k = between(None, Some("1")).unwrap();
        assert!(k.as_str() < "1" && is_valid_key(&k), "{k}");
        let k = between(Some("z"), None).unwrap();
        assert!(k.as_str() > "z" && is_valid_key(&k), "{k}");
    }

    #[test]
    fn malformed_and_unordered_keys_are_refused() {
        assert!(matches!(
            between(Some("a0"), None),
            Err(RankError::InvalidKey(_))
        ));
        assert!(matches!(
            between(Some("a-"), None),
            Err(RankError::InvalidKey(_))
        ));
        assert!(matches!(
            between(Some(""), None),
            Err(RankError::InvalidKey(_))
        ));
        assert!(matches!(
            between(Some("b"), Some("a")),
            Err(RankError::OutOfOrder(..))
        ));
        assert!(matches!(
            between(Some("b"), Some("b")),
            Err(RankError::OutOfOrder(..))
        ));
    }

    #[test]
    fn evenly_spaced_keys_ascend() {
        for count in [0, 1, 7, 60, 61, 200] {
            let keys = evenly_spaced(count);
            assert_eq!(keys.len(), count);
            assert!(keys.windows(2).all(|w| w[0] < w[1]), "{keys:?}");
            assert!(keys.iter().all(|k| is_valid_key(k)));
        }
    }

    #[test]
    fn appending_and_prepending_keep_keys_short() {
        // Every new lead is appended to its stage: a hundred thousand must not grow the keys.
        let mut last = between(None, None).unwrap();
        for _ in 0..100_000 {
            let next = between(Some(&last), None).unwrap();
            assert!(next > last && is_valid_key(&next), "{last} -> {next}");
            last = next;
        }
        assert!(last.len() <= END_STEP_DIGITS, "{last}");
        let mut first = between(None, None).unwrap();
        for _ in 0..100_000 {
            let next = between(None, Some(&first)).unwrap();
            assert!(next < first && is_valid_key(&next), "{first} -> {next}");
            first = next;
        }
        assert!(first.len() <= END_STEP_DIGITS, "{first}");
    }

    #[test]
    fn open_ends_at_the_edges_of_the_key_space() {
        let after_max = between(Some("zzzz"), None).unwrap();
        assert!(
            after_max.as_str() > "zzzz" && is_valid_key(&after_max),
            "{after_max}"
        );
        let before_min = between(None, Some("0001")).unwrap();
        assert!(
            before_min.as_str() < "0001" && is_valid_key(&before_min),
            "{before_min}"
        );
    }

    #[test]
    fn repeated_inserts_at_one_spot_stay_short() {
        // Always inserting right after the first item: the worst case for key growth.
        let first = between(None, None).unwrap();
        let mut next = between(Some(&first), None).unwrap();
        for _ in 0..1000 {
            next = between(Some(&first), Some(&next)).unwrap();
        }
        // Bisection gains ~6 bits per character: about one character per five inserts.
        assert!(next.len() <= 1000 / 4, "{}", next.len());
    }

    fn key() -> impl Strategy<Value = String> {
        "[0-9A-Za-z]{0,6}[1-9A-Za-z]"
    }

    proptest! {
        #[test]
        fn between_is_strictly_between(a in key(), b in key()) {
            prop_assume!(a != b);
            let (low, high) = if a < b { (a, b) } else { (b, a) };
            let mid = between(Some(&low), Some(&high)).unwrap();
            prop_assert!(low < mid && mid < high, "{} < {} < {}", low, mid, high);
            prop_assert!(is_valid_key(&mid));
        }

        #[test]
        fn open_ends_extend_the_order(a in key()) {
            let after = between(Some(&a), None).unwrap();
            let before = between(None, Some(&a)).unwrap();
            prop_assert!(a < after && is_valid_key(&after));
            prop_assert!(before < a && is_valid_key(&before));
        }

        #[test]
        fn arbitrary_input_never_panics(a in ".{0,8}", b in ".{0,8}") {
            let _ = between(Some(&a), Some(&b));
        }
    }
}
