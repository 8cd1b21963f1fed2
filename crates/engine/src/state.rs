//! What every session of one engine shares with it: the configuration, the registry, the
//! counters, the shutdown flag and the handshake rate limiter.
//!
//! Kept apart from [`Engine`](crate::Engine) (which also holds the connection handler) so
//! that session drivers can point to it without depending on the engine module.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::config::EngineConfig;
use crate::metrics::Counters;
use crate::ratelimit::RateLimiter;
use crate::registry::Registry;

/// The engine's state, shared by its handles, its HTTP handlers and its session drivers.
pub(crate) struct EngineState {
    pub(crate) config: EngineConfig,
    pub(crate) registry: Registry,
    pub(crate) shutting_down: AtomicBool,
    pub(crate) counters: Arc<Counters>,
    pub(crate) rate_limiter: Option<RateLimiter>,
}
