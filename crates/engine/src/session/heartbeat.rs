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

/// The heartbeat of one session. `pingInterval` and `pingTimeout` come with each call that
/// needs them, from the engine's configuration, rather than being kept here: the driver's
/// state is touched whole for every message, a cache line per 64 bytes, and they are needed
/// only around a ping.
#[derive(Debug)]
pub(super) struct Heartbeat {
    /// When the next ping is due; meaningful while no pong is awaited.
    next_ping: Instant,
    /// Set while a pong is awaited: the session ends at this instant without one.
    pong_deadline: Option<Instant>,
    /// The pong deadline of the current ping was already pushed back by a packet.
    refreshed: bool,
}

impl Heartbeat {
    /// The first ping is due one interval after `now` (the handshake), not at once.
    pub(super) fn new(now: Instant, interval: Duration) -> Self {
        Self {
            next_ping: now + interval,
            pong_deadline: None,
            refreshed: false,
        }
    }

    /// Engine.IO v3: the server never pings; the client must ping within `pingInterval +
    /// pingTimeout` of the handshake and of each of its pings (engine.io 6.6,
    /// `resetPingTimeout` for protocol 3). Other packets do not count.
    pub(super) fn new_v3(now: Instant, interval: Duration, timeout: Duration) -> Self {
        Self {
            next_ping: now + interval,
            pong_deadline: Some(now + interval + timeout),
            refreshed: true,
        }
    }

    /// Engine.IO v3: the client pinged at `now`; its next ping is due within `pingInterval +
    /// pingTimeout`.
    pub(super) fn ping_received(&mut self, now: Instant, interval: Duration, timeout: Duration) {
        self.pong_deadline = Some(now + interval + timeout);
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

    /// A ping was queued at `now`: the pong is awaited from then on, for `timeout`.
    pub(super) fn ping_sent(&mut self, now: Instant, timeout: Duration) {
        // From the time the ping was due, not from when the timer got to run: a client that
        // misses it is gone exactly pingInterval + pingTimeout after the last pong. Should
        // the driver have been starved past that, the client still gets half a timeout to
        // answer.
        self.pong_deadline = Some((self.next_ping + timeout).max(now + timeout / 2));
        self.refreshed = false;
    }

    /// Whether a packet arriving now would restart the ping timeout (see
    /// [`packet_received`](Self::packet_received)).
    pub(super) fn awaits_refresh(&self) -> bool {
        !self.refreshed && self.pong_deadline.is_some()
    }

    /// A packet other than a pong arrived at `now`. The first one after a ping, while its
    /// pong is awaited, restarts the ping timeout from `now`; later ones change nothing until
    /// the next ping.
    pub(super) fn packet_received(&mut self, now: Instant, timeout: Duration) {
        if self.refreshed {
            return;
        }
        if let Some(deadline) = &mut self.pong_deadline {
            *deadline = (*deadline).max(now + timeout);
            self.refreshed = true;
        }
    }

    /// A pong arrived at `now`: the next ping is due one interval later. A pong nobody
    /// waited for changes nothing.
    pub(super) fn pong_received(&mut self, now: Instant, interval: Duration) {
        if self.pong_deadline.take().is_some() {
            self.next_ping = now + interval;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(300);
    const TIMEOUT: Duration = Duration::from_millis(200);
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn one_packet_per_ping_restarts_the_ping_timeout() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, INTERVAL);
        // No pong is awaited before the first ping: packets change nothing.
        hb.packet_received(t0 + 100 * MS, TIMEOUT);
        assert_eq!(hb.pong_deadline(), None);
        assert!(!hb.ping_due(t0 + 299 * MS));
        let ping = t0 + INTERVAL;
        assert!(hb.ping_due(ping));
        hb.ping_sent(ping, TIMEOUT);
        assert_eq!(hb.pong_deadline(), Some(ping + TIMEOUT));
        // The first packet after the ping restarts the timeout, the second does not.
        hb.packet_received(ping + 50 * MS, TIMEOUT);
        assert_eq!(hb.pong_deadline(), Some(ping + 50 * MS + TIMEOUT));
        hb.packet_received(ping + 150 * MS, TIMEOUT);
        assert_eq!(hb.pong_deadline(), Some(ping + 50 * MS + TIMEOUT));
        // The pong ends the wait; the next ping is due one interval after it.
        let pong = ping + 200 * MS;
        hb.pong_received(pong, INTERVAL);
        assert_eq!(hb.pong_deadline(), None);
        assert_eq!(hb.next_ping(), pong + INTERVAL);
        // The next ping allows one refresh again.
        let ping = pong + INTERVAL;
        hb.ping_sent(ping, TIMEOUT);
        hb.packet_received(ping + 10 * MS, TIMEOUT);
        assert_eq!(hb.pong_deadline(), Some(ping + 10 * MS + TIMEOUT));
    }

    #[test]
    fn a_pong_nobody_waited_for_changes_nothing() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(t0, INTERVAL);
        hb.pong_received(t0 + 100 * MS, INTERVAL);
        assert_eq!(hb.next_ping(), t0 + INTERVAL);
    }
}
