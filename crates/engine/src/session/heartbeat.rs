//! Heartbeat deadlines: when the next ping is due, and until when a pong is awaited.
//!
//! Engine.IO v4: the server sends a ping every `pingInterval`, counted from the last pong, and
//! closes the session when no pong comes within `pingTimeout`. Deadlines are instants checked
//! against the clock (see `Incoming::poll_timers`), not timers that must fire.
//!
//! As engine.io 6.6 (`Socket.onPacket`), the first packet other than a pong that arrives while
//! a pong is awaited restarts the ping timeout from its arrival, once per ping: the client is
//! alive, and its pong may be queued behind its own traffic.

use std::time::Duration;

use tokio::time::Instant;

/// The heartbeat of one session.
#[derive(Debug)]
pub(super) struct Heartbeat {
    interval: Duration,
    timeout: Duration,
    /// When the next ping is due; meaningful while no pong is awaited.
    next_ping: Instant,
    /// Set while a pong is awaited: the session ends at this instant without one.
    pong_deadline: Option<Instant>,
    /// The pong deadline of the current ping was already pushed back by a packet.
    refreshed: bool,
}

impl Heartbeat {
    /// The first ping is due one interval after `now` (the handshake), not at once.
    pub(super) fn new(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            interval,
            timeout,
            next_ping: now + interval,
            pong_deadline: None,
            refreshed: false,
        }
    }

    /// When the next ping is due (once no pong is awaited).
    pub(super) fn next_ping(&self) -> Instant {
        self.next_ping
    }

    /// Until when a pong is awaited, if one is.
    pub(super) fn pong_deadline(&self) -> Option<Instant> {
        self.pong_deadline
    }

    /// Whether a ping should be sent at `now`: none is awaiting its pong and one is due.
    pub(super) fn ping_due(&self, now: Instant) -> bool {
        self.pong_deadline.is_none() && self.next_ping <= now
    }

    /// A ping was queued at `now`: the pong is awaited from then on.
    pub(super) fn ping_sent(&mut self, now: Instant) {
        // From the time the ping was due, not from when the timer got to run: a client that
        // misses it is gone exactly pingInterval + pingTimeout after the last pong. Should
        // the driver have been starved past that, the client still gets half a timeout to
        // answer.
        let timeout = self.timeout;
        self.pong_deadline = Some((self.next_ping + timeout).max(now + timeout / 2));
        self.refreshed = false;
    }

    /// A packet other than a pong arrived at `now`. The first one after a ping, while its
    /// pong is awaited, restarts the ping timeout from `now`; later ones change nothing until
    /// the next ping.
    pub(super) fn packet_received(&mut self, now: Instant) {
        if self.refreshed {
            return;
        }
        if let Some(deadline) = &mut self.pong_deadline {
            *deadline = (*deadline).max(now + self.timeout);
            self.refreshed = true;
        }
    }

    /// A pong arrived at `now`: the next ping is due one interval later. A pong nobody
    /// waited for changes nothing.
    pub(super) fn pong_received(&mut self, now: Instant) {
        if self.pong_deadline.take().is_some() {
            self.next_ping = now + self.interval;
        }
    }
}
