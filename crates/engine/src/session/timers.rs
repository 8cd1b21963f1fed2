//! Every deadline of a session (heartbeat, upgrade, closing, linger, slow consumer) is an
//! instant checked against the clock each time the driver runs; one timer is armed for the
//! earliest of them.

use std::task::Context;

use tokio::time::Instant;
use volley_proto::engine::PacketType;

use super::Incoming;
use super::websocket::close_ws_later;
use crate::error::CloseReason;

impl Incoming {
    /// Fires due timers and re-arms the timer. Returns whether anything fired.
    pub(super) fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        let now = Instant::now();
        let mut fired = false;
        if let Some(at) = self.linger
            && at <= now
        {
            self.finish(CloseReason::TransportClose);
            return true;
        }
        if let Some(at) = self.closing_deadline
            && at <= now
        {
            let reason = self.closing.unwrap_or(CloseReason::ForcedClose);
            self.finish(reason);
            return true;
        }
        let backlog_deadline = self.backlog_deadline(now);
        if backlog_deadline.is_some_and(|at| at <= now) {
            self.cut_slow_consumer();
            return true;
        }
        if let Some(at) = self.heartbeat.pong_deadline() {
            if at <= now {
                self.finish(CloseReason::PingTimeout);
                return true;
            }
        } else if self.heartbeat.ping_due(now) && self.closing.is_none() && self.linger.is_none() {
            self.push_control(PacketType::Ping);
            self.heartbeat
                .ping_sent(now, self.engine.config.ping_timeout);
            fired = true;
        }
        if let Some(up) = &self.upgrading
            && up.deadline <= now
        {
            if let Some(up) = self.upgrading.take() {
                close_ws_later(up.ws);
            }
            fired = true;
        }
        let mut next = match self.heartbeat.pong_deadline() {
            Some(at) => at,
            // A closing session sends no more pings: a `next_ping` already past must not
            // arm the timer, or it fires again at once and the driver never yields.
            None if self.closing.is_some() || self.linger.is_some() => self
                .closing_deadline
                .or(self.linger)
                .unwrap_or(self.heartbeat.next_ping()),
            None => self.heartbeat.next_ping(),
        };
        if let Some(up) = &self.upgrading {
            next = next.min(up.deadline);
        }
        if let Some(at) = self.closing_deadline {
            next = next.min(at);
        }
        if let Some(at) = self.linger {
            next = next.min(at);
        }
        if let Some(at) = backlog_deadline {
            next = next.min(at);
        }
        // The timer is moved only to an earlier instant, or once it has gone off: a timer
        // armed too early merely wakes the driver, which arms it again here. So a busy
        // session whose backlog deadline moves with every message does not reset it each time.
        let rearm = next != self.timer_at && (next < self.timer_at || self.timer_at <= now);
        if rearm {
            self.timer.as_mut().reset(next);
            self.timer_at = next;
            // Not registered any more until polled again (on this round or the next).
            self.timer_waker = None;
        }
        // A registered timer keeps its waker: it is polled again only once re-armed, from
        // another task, or once its instant has passed (it went off, or is about to, and its
        // waker is used up then). The instant is checked against `now` rather than asking
        // the timer (`Sleep::is_elapsed`), which would touch its separate allocation on every
        // round: a timer can only have gone off at or after its instant, so it has not before
        // `now` reaches it, and one that goes off after `now` was read wakes the task, whose
        // next round finds the instant passed.
        let registered = self
            .timer_waker
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()));
        if !fired && (!registered || self.timer_at <= now) {
            self.timer_waker = Some(cx.waker().clone());
            if self.timer.as_mut().poll(cx).is_ready() {
                // The deadline passed between reading the clock and polling: go round again.
                fired = true;
            }
        }
        fired
    }
}
