//! A per-thread buffer that packets are written into before they are copied out at their exact
//! size.
//!
//! A `Bytes` made from a `Vec` with spare capacity allocates a shared header to remember that
//! capacity; one made from a `Vec` with none (or from a copy of exactly the bytes written) is
//! a plain boxed slice until its first clone. Writing an event in a reused buffer and copying
//! it out therefore costs one allocation per packet instead of two (the buffer and the header)
//! — the copy of a short packet costs less than the `malloc`/`free` pair it saves. A packet
//! sent to one socket is never cloned; one broadcast gets its shared header on its first clone,
//! as before.

use std::cell::Cell;

use bytes::Bytes;

/// What the buffer starts with: room for most events.
const INITIAL: usize = 256;

/// A buffer grown past this by one large packet is dropped after it, so that a thread does not
/// keep a large allocation for the rest of its life.
const KEEP_AT_MOST: usize = 64 * 1024;

thread_local! {
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// The thread's buffer, empty. It is taken out of the thread, so re-entrant use (a `Serialize`
/// implementation that encodes another packet while being written) finds none and gets a new
/// one; a buffer not given back to [`freeze`] (an encoding that failed) is simply dropped.
#[inline]
pub(crate) fn take() -> Vec<u8> {
    let mut buf = SCRATCH.try_with(Cell::take).unwrap_or_default();
    if buf.capacity() == 0 {
        buf.reserve(INITIAL);
    }
    buf.clear();
    buf
}

/// What `buf` holds as an exact-size `Bytes`; the buffer goes back to the thread.
#[inline]
pub(crate) fn freeze(buf: Vec<u8>) -> Bytes {
    let bytes = Bytes::copy_from_slice(&buf);
    if buf.capacity() <= KEEP_AT_MOST {
        let _ = SCRATCH.try_with(|cell| cell.set(buf));
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_bytes_and_the_buffer_reused_empty() {
        let mut buf = take();
        buf.extend_from_slice(b"42[\"a\"]");
        let ptr = buf.as_ptr();
        let bytes = freeze(buf);
        assert_eq!(&bytes[..], b"42[\"a\"]");
        assert_eq!(bytes.len(), 7);
        let buf = take();
        assert!(buf.is_empty());
        assert_eq!(buf.as_ptr(), ptr, "the same buffer again");
    }

    #[test]
    fn nested_use_gets_a_buffer_of_its_own() {
        let mut outer = take();
        outer.extend_from_slice(b"outer-");
        let mut inner = take();
        assert!(inner.is_empty());
        inner.extend_from_slice(b"inner");
        let inner = freeze(inner);
        outer.extend_from_slice(b"end");
        assert_eq!(&freeze(outer)[..], b"outer-end");
        assert_eq!(&inner[..], b"inner");
    }

    #[test]
    fn a_large_buffer_does_not_stay_in_the_thread() {
        let mut buf = take();
        buf.resize(KEEP_AT_MOST * 2, b'a');
        assert_eq!(freeze(buf).len(), KEEP_AT_MOST * 2);
        assert!(take().capacity() <= KEEP_AT_MOST);
    }
}
