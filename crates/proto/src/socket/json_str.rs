//! JSON strings, eight bytes at a time: finding where a run of plain characters ends (for the
//! array scanner and the argument decoder), and writing a string escaped as `JSON.stringify`
//! does.
//!
//! A plain byte is one that a JSON string holds as it is and that `JSON.stringify` leaves as it
//! is: anything but `"`, `\` and the control characters below 0x20. Bytes of 0x80 and above
//! are plain (the text is UTF-8 already).

use bytes::BufMut;

const ONES: u64 = u64::from_ne_bytes([1; 8]);
const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
const BACKSLASHES: u64 = u64::from_ne_bytes([b'\\'; 8]);
const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);

/// Whether `c` must be escaped in a JSON string.
pub(super) fn is_special(c: u8) -> bool {
    c == b'"' || c == b'\\' || c < 0x20
}

/// The length of the longest prefix of `b` with only plain bytes: the index of the first `"`,
/// `\` or control character, or `b.len()`.
///
/// Eight bytes at a time: for a little-endian word `w`, `(x - 0x01..01) & !x & 0x80..80` has
/// the high bit of the lowest zero byte of `x` set (bytes above it may be flagged by a borrow,
/// never bytes below), and likewise `(w - 0x20..20) & !w & 0x80..80` for the lowest byte under
/// 0x20; `x` is `w` xor the quote or the backslash, whose high bit is `w`'s. The last bytes are
/// read as one word that ends with them, overlapping bytes already found plain (which are
/// never flagged, being below any special byte).
pub(crate) fn plain_prefix(b: &[u8]) -> usize {
    prefix::<false>(b)
}

/// [`plain_prefix`] that also stops at the first byte of 0x80 or above (for text not known to
/// be UTF-8 yet).
pub(crate) fn ascii_prefix(b: &[u8]) -> usize {
    prefix::<true>(b)
}

fn prefix<const ASCII: bool>(b: &[u8]) -> usize {
    let len = b.len();
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 8) {
        if let Some(k) = first_special::<ASCII>(word(chunk)) {
            return i + k;
        }
        i += 8;
    }
    if i == len {
        return len;
    }
    if len >= 8 {
        return first_special::<ASCII>(word(&b[len - 8..])).map_or(len, |k| len - 8 + k);
    }
    if len >= 4 {
        // Fewer than eight bytes: the first four and the last four, in one word.
        let (head, tail) = (half(&b[..4]), half(&b[len - 4..]));
        return match first_special::<ASCII>(head | tail << 32) {
            None => len,
            Some(k) if k < 4 => k,
            Some(k) => k + len - 8,
        };
    }
    b.iter()
        .position(|&c| is_special(c) || (ASCII && c >= 0x80))
        .unwrap_or(len)
}

/// Eight bytes as a little-endian word.
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0; 8];
    w.copy_from_slice(chunk);
    u64::from_le_bytes(w)
}

/// Four bytes as a little-endian word.
fn half(chunk: &[u8]) -> u64 {
    let mut w = [0; 4];
    w.copy_from_slice(chunk);
    u64::from(u32::from_le_bytes(w))
}

/// The index of the first special byte of a little-endian word, if any (with `ASCII`, bytes
/// of 0x80 and above count as special: their own high bit flags them).
fn first_special<const ASCII: bool>(w: u64) -> Option<usize> {
    let high = if ASCII { w } else { 0 };
    let found = (((w ^ QUOTES).wrapping_sub(ONES)
        | (w ^ BACKSLASHES).wrapping_sub(ONES)
        | w.wrapping_sub(SPACES))
        & !w
        | high)
        & HIGH;
    (found != 0).then(|| (found.trailing_zeros() / 8) as usize)
}

/// The content of `json` if it is a JSON string with nothing escaped (`"` + plain UTF-8 +
/// `"`), which is its value as it is.
pub(crate) fn plain_string(json: &[u8]) -> Option<&str> {
    let inner = json.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if plain_prefix(inner) != inner.len() {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// Writes `s` as a JSON string, escaped exactly as `JSON.stringify` does (and serde_json):
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, other control characters as `\u00xx`; runs of
/// plain characters are copied in one go.
///
/// ```
/// let mut out = Vec::new();
/// volley_proto::socket::write_json_str(&mut out, "a\"b\n\u{1}é");
/// assert_eq!(out, r#""a\"b\n\u0001é""#.as_bytes());
/// ```
pub fn write_json_str(out: &mut impl BufMut, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.put_u8(b'"');
    let mut rest = s.as_bytes();
    loop {
        let n = plain_prefix(rest);
        out.put_slice(&rest[..n]);
        let Some(&c) = rest.get(n) else {
            break;
        };
        rest = &rest[n + 1..];
        let short = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            _ => {
                let (hi, lo) = (HEX[usize::from(c >> 4)], HEX[usize::from(c & 0xf)]);
                out.put_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
                continue;
            }
        };
        out.put_slice(&[b'\\', short]);
    }
    out.put_u8(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn slow_prefix(b: &[u8]) -> usize {
        b.iter().position(|&c| is_special(c)).unwrap_or(b.len())
    }

    #[test]
    fn finds_every_special_byte_at_every_position() {
        for len in 0..24 {
            assert_eq!(plain_prefix(&vec![b'x'; len]), len);
            for at in 0..len {
                for special in (0..0x20).chain([b'"', b'\\']) {
                    let mut b = vec![b'x'; len];
                    b[at] = special;
                    assert_eq!(plain_prefix(&b), at, "{special:#x} at {at} of {len}");
                    assert_eq!(ascii_prefix(&b), at, "{special:#x} at {at} of {len}");
                    // A second one after it, or bytes that a borrow could mistake.
                    for later in at + 1..len {
                        b[later] = 0x21;
                        assert_eq!(plain_prefix(&b), at);
                        assert_eq!(ascii_prefix(&b), at);
                    }
                    // A high byte: plain to one, special to the other.
                    b[at] = 0x80 | special;
                    assert_eq!(ascii_prefix(&b), at);
                    assert!(plain_prefix(&b) > at);
                }
            }
        }
        // Neighbours of the special bytes, and high bytes, are plain.
        let plain: Vec<u8> = [0x20, 0x21, 0x23, 0x5b, 0x5d, 0x7f, 0x80, 0xa2, 0xdc, 0xff].repeat(5);
        assert_eq!(plain_prefix(&plain), plain.len());
    }

    #[test]
    fn escapes_like_serde_json() {
        let all: String = (0u8..0x80).map(char::from).collect();
        for s in [
            "",
            "echo",
            "a\"b\\c",
            "é ü 😀\u{7f}\u{2028}",
            &all,
            &all.repeat(3),
        ] {
            let mut out = Vec::new();
            write_json_str(&mut out, s);
            assert_eq!(out, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn plain_strings_only() {
        assert_eq!(plain_string(br#""abc""#), Some("abc"));
        assert_eq!(plain_string(br#""""#), Some(""));
        assert_eq!(plain_string("\"é😀\"".as_bytes()), Some("é😀"));
        for no in [
            &b"\""[..],
            b"",
            b"abc",
            br#""a"b""#,
            br#""a\n""#,
            b"\"a\x01\"",
            br#" "a""#,
            br#""a" "#,
            b"\"\xff\"",
            b"\"\xc3\"",
        ] {
            assert_eq!(plain_string(no), None, "{no:?}");
        }
    }

    proptest! {
        #[test]
        fn prefix_is_the_first_special_byte(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            prop_assert_eq!(plain_prefix(&b), slow_prefix(&b));
        }

        #[test]
        fn ascii_prefix_also_stops_at_high_bytes(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let slow = b.iter().position(|&c| is_special(c) || c >= 0x80).unwrap_or(b.len());
            prop_assert_eq!(ascii_prefix(&b), slow);
        }

        #[test]
        fn prefix_on_mostly_plain_text(s in "[a-z\"\\\\\\x00-\\x1f é😀]{0,80}") {
            prop_assert_eq!(plain_prefix(s.as_bytes()), slow_prefix(s.as_bytes()));
        }

        #[test]
        fn escaping_is_serde_json_s(s in any::<String>()) {
            let mut out = Vec::new();
            write_json_str(&mut out, &s);
            prop_assert_eq!(out, serde_json::to_vec(&s).unwrap());
        }

        #[test]
        fn a_plain_string_is_what_serde_json_reads(s in any::<String>()) {
            let json = serde_json::to_vec(&s).unwrap();
            let expected = (!s.bytes().any(is_special)).then_some(s.as_str());
            prop_assert_eq!(plain_string(&json), expected);
        }
    }
}
