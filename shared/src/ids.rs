//! Opaque, time-sortable ids: `<prefix>_<26 lowercase Crockford base32 chars>`.
//!
//! The 26 characters are a ULID: a 48-bit millisecond timestamp followed by 80 random bits. Fixed
//! width and an alphabet in ASCII order make ids with the same prefix sort by creation time as plain
//! strings, which keeps D1 index inserts append-mostly and gives cursors a stable order. The prefix
//! tells a human (and a log line) what an id names; clients must still treat ids as opaque.

/// Prefixes in use, so callers do not scatter string literals.
pub mod prefix {
    pub const LEAD: &str = "lead";
    pub const INTERACTION: &str = "ix";
    pub const STAGE: &str = "stg";
    pub const CUSTOM_FIELD: &str = "cf";
    pub const INBOX_EVENT: &str = "evt";
    pub const ORG: &str = "org";
}

/// Crockford's base32 alphabet (no i, l, o, u), lowercase. Sorted in ASCII order, which is what
/// makes the encoded ids sort like the numbers they encode.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Characters in the encoded part: 128 bits in 5-bit groups, the first carrying only 3 bits.
pub const ENCODED_LEN: usize = 26;

const TIMESTAMP_CHARS: usize = 10;
const MAX_TIMESTAMP_MS: i64 = (1 << 48) - 1;

/// A new id: `prefix` + `_` + the ULID of `now_ms` (Unix milliseconds) and `random`.
///
/// `now_ms` is clamped to the 48-bit range (0 to year 10889), so a bogus clock can misorder an id
/// but never produce a malformed one. Distinct `random` bytes give distinct ids within the same
/// millisecond; callers draw them from a CSPRNG.
pub fn new_id(prefix: &str, now_ms: i64, random: [u8; 10]) -> String {
    let timestamp = now_ms.clamp(0, MAX_TIMESTAMP_MS) as u128;
    let mut value = timestamp << 80;
    for (index, byte) in random.iter().enumerate() {
        value |= (*byte as u128) << (8 * (9 - index));
    }

    let mut encoded = [0u8; ENCODED_LEN];
    // Fill from the least significant end, 5 bits per character.
    for slot in encoded.iter_mut().rev() {
        *slot = ALPHABET[(value & 0x1f) as usize];
        value >>= 5;
    }

    let mut id = String::with_capacity(prefix.len() + 1 + ENCODED_LEN);
    id.push_str(prefix);
    id.push('_');
    // Every byte comes from the ASCII alphabet above.
    id.extend(encoded.iter().map(|&byte| byte as char));
    id
}

/// The creation time (Unix milliseconds) encoded in an id made by [`new_id`], or `None` when `id`
/// does not have that shape. Useful for debugging and for rejecting malformed ids early.
pub fn timestamp_ms(id: &str) -> Option<i64> {
    let (_prefix, encoded) = id.rsplit_once('_')?;
    if encoded.len() != ENCODED_LEN {
        return None;
    }
    let mut digits = [0u8; ENCODED_LEN];
    for (digit, byte) in digits.iter_mut().zip(encoded.bytes()) {
        *digit = ALPHABET.iter().position(|&symbol| symbol == byte)? as u8;
    }
    // The first character carries only the top 3 bits of the 128-bit value.
    if digits[0] > 7 {
        return None;
    }
    let timestamp = digits[..TIMESTAMP_CHARS]
        .iter()
        .fold(0i64, |acc, &digit| (acc << 5) | digit as i64);
    Some(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_772_366_400_000; // 2026-03-01T12:00:00Z

    fn encoded_part(id: &str) -> &str {
        id.rsplit_once('_').unwrap().1
    }

    #[test]
    fn shape_is_prefix_underscore_and_26_chars() {
        let id = new_id(prefix::LEAD, NOW_MS, [7; 10]);
        assert!(id.starts_with("lead_"));
        assert_eq!(id.len(), "lead_".len() + 26);
        assert_eq!(encoded_part(&id).len(), ENCODED_LEN);
    }

    #[test]
    fn charset_is_lowercase_crockford() {
        for seed in 0..=255u8 {
            let id = new_id("ix", NOW_MS + seed as i64, [seed; 10]);
            assert!(
                encoded_part(&id)
                    .bytes()
                    .all(|byte| ALPHABET.contains(&byte)),
                "{id}"
            );
            assert!(!encoded_part(&id).contains(['i', 'l', 'o', 'u']));
        }
    }

    #[test]
    fn matches_the_ulid_reference_encoding() {
        // The ULID spec's example timestamp 1469922850259 encodes as 01ARZ3NDEK.
        let id = new_id("x", 1_469_922_850_259, [0; 10]);
        assert_eq!(id, "x_01arz3ndek0000000000000000");
        let id = new_id("x", 0, [0xff; 10]);
        assert_eq!(id, "x_0000000000zzzzzzzzzzzzzzzz");
        let id = new_id("x", MAX_TIMESTAMP_MS, [0xff; 10]);
        assert_eq!(id, "x_7zzzzzzzzzzzzzzzzzzzzzzzzz");
    }

    #[test]
    fn ids_sort_by_time_whatever_the_random_bytes() {
        let times = [0, 1, 999, NOW_MS - 1, NOW_MS, NOW_MS + 1, MAX_TIMESTAMP_MS];
        let ids: Vec<String> = times
            .iter()
            .enumerate()
            .map(|(index, &time)| {
                // Later ids get smaller random bytes, so only the timestamp can order them.
                new_id("evt", time, [255 - index as u8; 10])
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }

    #[test]
    fn same_millisecond_ids_sort_by_random_bytes() {
        let low = new_id("stg", NOW_MS, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let high = new_id("stg", NOW_MS, [1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert!(low < high);
    }

    #[test]
    fn distinct_random_bytes_give_distinct_ids() {
        let mut seen = std::collections::HashSet::new();
        for position in 0..10 {
            for bit in 0..8 {
                let mut random = [0u8; 10];
                random[position] = 1 << bit;
                assert!(seen.insert(new_id("cf", NOW_MS, random)));
            }
        }
        assert!(seen.insert(new_id("cf", NOW_MS, [0; 10])));
        assert_eq!(seen.len(), 81);
    }

    #[test]
    fn out_of_range_clocks_are_clamped() {
        assert_eq!(
            encoded_part(&new_id("org", -5, [0; 10]))[..10],
            *"0000000000"
        );
        assert_eq!(
            timestamp_ms(&new_id("org", i64::MAX, [0; 10])),
            Some(MAX_TIMESTAMP_MS)
        );
    }

    #[test]
    fn timestamp_round_trips() {
        for time in [0, 1, NOW_MS, MAX_TIMESTAMP_MS] {
            assert_eq!(
                timestamp_ms(&new_id(prefix::ORG, time, [0xa5; 10])),
                Some(time)
            );
        }
    }

    #[test]
    fn timestamp_rejects_malformed_ids() {
        let valid = new_id("lead", NOW_MS, [0; 10]);
        let encoded = encoded_part(&valid);
        assert_eq!(timestamp_ms(&valid), Some(NOW_MS));
        assert_eq!(timestamp_ms("lead"), None);
        assert_eq!(timestamp_ms("lead_"), None);
        // One character short, one too many.
        assert_eq!(timestamp_ms(&format!("lead_{}", &encoded[1..])), None);
        assert_eq!(timestamp_ms(&format!("lead_{encoded}0")), None);
        // Letters outside Crockford's alphabet, uppercase included.
        for bad in ["u", "i", "l", "o", "A", "-"] {
            assert_eq!(timestamp_ms(&format!("lead_{}{bad}", &encoded[1..])), None);
        }
        // A first character above 7 would need more than 128 bits.
        assert_eq!(timestamp_ms(&format!("lead_8{}", &encoded[1..])), None);
        // Right byte length, but not ASCII.
        assert_eq!(timestamp_ms(&format!("lead_{}é", &encoded[2..])), None);
    }
}
