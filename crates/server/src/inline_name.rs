//! A name (an event's, a namespace's) kept inline when short, for the connection task's
//! per-packet lookups: comparing a short one with an incoming name touches no memory beyond
//! the name itself, where a `String` key costs one more cache line (its heap bytes), cold
//! when many connections take turns.

/// The longest name kept inline; longer ones go to the heap. With the length byte and the
/// enum's tag the whole is as large as a `String` (24 bytes).
const INLINE: usize = 22;

/// A name compared by its bytes (see the module docs).
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum InlineName {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Box<[u8]>),
}

impl InlineName {
    pub(crate) fn new(name: &[u8]) -> Self {
        match u8::try_from(name.len()) {
            Ok(len) if name.len() <= INLINE => {
                let mut bytes = [0; INLINE];
                bytes[..name.len()].copy_from_slice(name);
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(name.into()),
        }
    }

    /// Whether this is `name`.
    #[inline]
    pub(crate) fn is(&self, name: &[u8]) -> bool {
        match self {
            Self::Inline { len, bytes } => {
                usize::from(*len) == name.len() && bytes.get(..name.len()) == Some(name)
            }
            Self::Heap(b) => **b == *name,
        }
    }
}

impl std::fmt::Debug for InlineName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let bytes = match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(b) => b,
        };
        write!(f, "{:?}", String::from_utf8_lossy(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::InlineName;

    #[test]
    fn compares_by_bytes_inline_or_not() {
        assert_eq!(std::mem::size_of::<InlineName>(), 24);
        for name in ["", "a", "echo", "é", "22 bytes, just inline!", "23 bytes, on the heap!!"] {
            let n = InlineName::new(name.as_bytes());
            assert_eq!(
                matches!(n, InlineName::Inline { .. }),
                name.len() <= 22,
                "{name:?}"
            );
            assert!(n.is(name.as_bytes()), "{name:?}");
            // A prefix, a longer name, the same length with another byte: not it.
            if let Some((_, rest)) = name.as_bytes().split_last() {
                assert!(!n.is(rest), "{name:?}");
                let mut other = name.as_bytes().to_vec();
                *other.last_mut().unwrap() ^= 1;
                assert!(!n.is(&other), "{name:?}");
            }
            assert!(!n.is(format!("{name}x").as_bytes()), "{name:?}");
        }
        // The padding of an inline name is not part of it.
        assert!(!InlineName::new(b"a").is(b"a\0"));
        assert!(!InlineName::new(b"").is(b"\0"));
    }
}
