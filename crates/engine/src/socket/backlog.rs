//! The running totals the session's backlog is counted with.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A running total of frames and their bytes, written by one writer at a time (see
/// `Shared::accepted` and `Shared::settled`): a plain load and store per update, wrapping.
#[derive(Debug, Default)]
pub(super) struct Backlog {
    frames: AtomicUsize,
    bytes: AtomicUsize,
}

impl Backlog {
    pub(super) fn get(&self) -> (usize, usize) {
        (
            self.frames.load(Ordering::Acquire),
            self.bytes.load(Ordering::Acquire),
        )
    }

    pub(super) fn set(&self, frames: usize, bytes: usize) {
        self.frames.store(frames, Ordering::Release);
        self.bytes.store(bytes, Ordering::Release);
    }

    /// Adds (wrapping) to the totals; the caller is their only writer at the moment.
    pub(super) fn add(&self, frames: usize, bytes: usize) {
        let (f, b) = (
            self.frames.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        );
        self.set(f.wrapping_add(frames), b.wrapping_add(bytes));
    }
}
