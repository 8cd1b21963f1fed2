//! Ctrl-C: the end of `listen`, and of `bench`'s sending.

use crate::error::Failure;

/// Ctrl-C (SIGINT), and on Unix SIGTERM too, caught instead of ending the process.
pub(crate) struct Stop {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Stop {
    /// Installs the handlers now (not when first awaited).
    #[cfg(unix)]
    pub(crate) fn new() -> Result<Self, Failure> {
        use tokio::signal::unix::{SignalKind, signal};
        let handler =
            |kind| signal(kind).map_err(|e| Failure::Other(format!("cannot handle signals: {e}")));
        Ok(Self {
            int: handler(SignalKind::interrupt())?,
            term: handler(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    pub(crate) fn new() -> Result<Self, Failure> {
        Ok(Self {})
    }

    /// Waits for the signal.
    #[cfg(unix)]
    pub(crate) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }

    #[cfg(not(unix))]
    pub(crate) async fn recv(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `work` unless `stop` fires first ([`Failure::Interrupted`]).
pub(crate) async fn unless_stopped<T>(
    stop: &mut Stop,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::select! {
        r = work => r,
        () = stop.recv() => Err(Failure::Interrupted),
    }
}
