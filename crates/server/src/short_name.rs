//! A short name (an event's, a namespace's) packed with its length into 16 bytes, for the
//! connection task's per-packet lookups: comparing two is comparing two integers, with no
//! `memcmp` call and no memory beyond the two, where a `String` key costs one more cache line
//! (its heap bytes), cold when many connections take turns.

/// A name of at most [`MAX`](Self::MAX) bytes (see the module docs): its bytes, zero-padded,
/// then its length in the last byte, so that names that differ only by trailing zero bytes
/// differ too.
///
/// Two `u64`s rather than a `u128`: aligned to 8 bytes, not 16, so that it packs with
/// pointers (see `SocketCopy`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct ShortName([u64; 2]);

impl ShortName {
    /// The longest name that fits.
    pub(crate) const MAX: usize = 15;

    /// Equal to no name made by [`new`](Self::new) (its length byte is above
    /// [`MAX`](Self::MAX)): marks an empty slot or a name too long to fit.
    pub(crate) const NONE: Self = Self([u64::MAX; 2]);

    /// `name` packed, or `None` when it is longer than [`MAX`](Self::MAX).
    #[inline]
    pub(crate) fn new(name: &[u8]) -> Option<Self> {
        let len = name.len();
        if len > Self::MAX {
            return None;
        }
        let (lo, hi) = name.split_at(len.min(8));
        // `len` is at most 15: it fits the last byte.
        Some(Self([word(lo), word(hi) | (len as u64) << 56]))
    }
}

/// Up to 8 bytes as a little-endian integer, in a few loads rather than a `memcpy` call: two
/// overlapping 4-byte loads for 4 to 8 bytes (the bytes they share are the same, so or-ing
/// them is exact), three single ones for 1 to 3.
#[inline]
fn word(b: &[u8]) -> u64 {
    let n = b.len();
    let load4 = |b: &[u8]| {
        b.first_chunk::<4>()
            .map_or(0, |c| u64::from(u32::from_le_bytes(*c)))
    };
    match n {
        0 => 0,
        1..=3 => {
            let byte = |i: usize| u64::from(b[i]) << (8 * i);
            byte(0) | byte(n / 2) | byte(n - 1)
        }
        _ => load4(b) | load4(&b[n.saturating_sub(4)..]) << (8 * n.saturating_sub(4)),
    }
}

impl std::fmt::Debug for ShortName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut bytes = [0; 16];
        bytes[..8].copy_from_slice(&self.0[0].to_le_bytes());
        bytes[8..].copy_from_slice(&self.0[1].to_le_bytes());
        match bytes.get(..usize::from(bytes[Self::MAX])) {
            Some(name) => write!(f, "{:?}", String::from_utf8_lossy(name)),
            None => f.write_str("NONE"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ShortName;

    /// The packing spelled out: the bytes, zero-padded, the length last.
    fn reference(name: &[u8]) -> ShortName {
        let mut bytes = [0; 16];
        bytes[..name.len()].copy_from_slice(name);
        bytes[15] = name.len() as u8;
        let word = |b: &[u8]| u64::from_le_bytes(b.try_into().unwrap());
        ShortName([word(&bytes[..8]), word(&bytes[8..])])
    }

    #[test]
    fn packs_every_length_as_spelled_out() {
        let all: Vec<u8> = (1..=15).chain([0, 0x80, 0xff]).collect();
        for len in 0..=15 {
            for start in 0..=all.len() - len {
                let name = &all[start..start + len];
                assert_eq!(ShortName::new(name), Some(reference(name)), "{name:?}");
            }
        }
    }

    #[test]
    fn equal_exactly_when_the_names_are() {
        let names: &[&[u8]] = &[
            b"",
            b"\0",
            b"\0\0",
            b"a",
            b"a\0",
            b"b",
            b"ab",
            b"ba",
            b"echo",
            "é".as_bytes(),
            b"15 bytes, fits!",
            b"15 bytes, fits?",
            b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        ];
        for (i, a) in names.iter().enumerate() {
            let ka = ShortName::new(a).expect("fits");
            assert_ne!(ka, ShortName::NONE, "{a:?}");
            for (j, b) in names.iter().enumerate() {
                assert_eq!(ka == ShortName::new(b).unwrap(), i == j, "{a:?} {b:?}");
            }
        }
        assert_eq!(ShortName::new(b"sixteen bytes!!!"), None);
        assert_eq!(ShortName::new(&[0; 16]), None);
    }
}
