//! Random bytes from the OS CSPRNG, drawn in blocks.
//!
//! Every connection needs a session id (and the layer above a socket id): one `getrandom`
//! system call for each was two of the ~15 system calls of a connection. Each thread now
//! draws 512 bytes at a time and hands them out once each; the bytes handed out are wiped
//! from the pool, so what stays in memory is only what no id has used yet.

use std::cell::RefCell;

const POOL: usize = 512;

struct Pool {
    buf: [u8; POOL],
    /// Bytes before `pos` are used (and wiped).
    pos: usize,
}

thread_local! {
    static POOL_OF_THREAD: RefCell<Pool> = const {
        RefCell::new(Pool {
            buf: [0; POOL],
            pos: POOL,
        })
    };
}

/// Fills `out` with bytes from the OS CSPRNG (the same source as `getrandom`), taken from a
/// per-thread block so that most calls make no system call. Fails only when the OS
/// generator does.
///
/// ```
/// let mut id = [0u8; 16];
/// volley_engine::fill_random(&mut id).expect("the OS has randomness");
/// ```
pub fn fill_random(out: &mut [u8]) -> std::io::Result<()> {
    if out.len() > POOL / 4 {
        return getrandom::fill(out).map_err(os_error);
    }
    POOL_OF_THREAD.with_borrow_mut(|pool| {
        if POOL - pool.pos < out.len() {
            getrandom::fill(&mut pool.buf).map_err(os_error)?;
            pool.pos = 0;
        }
        let used = &mut pool.buf[pool.pos..pool.pos + out.len()];
        out.copy_from_slice(used);
        used.fill(0);
        pool.pos += out.len();
        Ok(())
    })
}

fn os_error(e: getrandom::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_do_not_repeat_across_refills() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1_000 {
            let mut id = [0u8; 16];
            fill_random(&mut id).unwrap();
            assert_ne!(id, [0u8; 16]);
            assert!(seen.insert(id), "an id came out twice");
        }
    }

    #[test]
    fn large_requests_go_to_the_os() {
        let mut big = [0u8; 1024];
        fill_random(&mut big).unwrap();
        assert!(big.iter().any(|&b| b != 0));
    }
}
