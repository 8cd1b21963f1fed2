//! The upgrade from long-polling to WebSocket: the probe (`2probe` / `3probe`), the noop that
//! releases the parked GET, and the switch on `5`; anything else, or the upgrade timeout,
//! drops the new socket and leaves the session on polling.

use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::{SinkExt as _, StreamExt as _};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{self, Utf8Bytes};
use volley_proto::TransportKind;
use volley_proto::engine::Packet;

use super::outbox::payload_of;
use super::websocket::close_ws_later;
use super::{Incoming, Transport};
use crate::command::WsStream;

/// A WebSocket being probed for an upgrade.
pub(super) struct Upgrading {
    pub(super) ws: Box<WsStream>,
    /// The upgrade is given up on at this instant.
    pub(super) deadline: Instant,
    /// `2probe` was answered.
    pub(super) probed: bool,
    /// `3probe` is written but not yet flushed.
    reply_pending: bool,
}

impl Incoming {
    /// A WebSocket arrived for this session: it becomes the upgrade candidate, or is closed
    /// when the session cannot upgrade now.
    pub(super) fn on_upgrade_request(&mut self, ws: Box<WsStream>) {
        let can_upgrade = self.engine.config.allow_upgrades
            && self.upgrading.is_none()
            && self.closing.is_none()
            && matches!(self.transport, Transport::Polling { .. });
        if can_upgrade {
            self.upgrading = Some(Box::new(Upgrading {
                ws,
                deadline: Instant::now() + self.engine.config.upgrade_timeout,
                probed: false,
                reply_pending: false,
            }));
        } else {
            close_ws_later(ws);
        }
    }

    /// Drives a WebSocket that is being probed for an upgrade. Returns whether anything
    /// happened.
    pub(super) fn poll_upgrade(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(up) = self.upgrading.as_mut() else {
            return false;
        };
        if up.reply_pending {
            match up.ws.poll_flush_unpin(cx) {
                Poll::Ready(Ok(())) => up.reply_pending = false,
                Poll::Ready(Err(_)) => {
                    self.upgrading = None;
                    return true;
                }
                Poll::Pending => {}
            }
        }
        let msg = match up.ws.poll_next_unpin(cx) {
            Poll::Pending => return false,
            Poll::Ready(Some(Ok(msg))) => msg,
            Poll::Ready(_) => {
                self.upgrading = None;
                return true;
            }
        };
        let packet = match msg {
            tungstenite::Message::Text(t) => Packet::decode_text(Bytes::from(t)).ok(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => return true,
            _ => None,
        };
        match packet {
            Some(Packet::Ping(p)) if &p[..] == b"probe" && !up.probed => {
                up.probed = true;
                let pong = tungstenite::Message::Text(Utf8Bytes::from_static("3probe"));
                let sent = up.ws.start_send_unpin(pong).is_ok();
                up.reply_pending = sent;
                if !sent {
                    self.upgrading = None;
                }
            }
            Some(Packet::Upgrade) if up.probed => {
                let Some(up) = self.upgrading.take() else {
                    return true;
                };
                if let Transport::Polling { parked } = &mut self.transport
                    && let Some(reply) = parked.take()
                {
                    if self.outbox.is_empty() {
                        let _ = reply.send(Ok(super::control_body(self.shared.v3, b"6")));
                    } else {
                        let (body, bytes) = payload_of(&self.outbox, self.v3_framing());
                        if reply.send(Ok(body)).is_ok() {
                            self.shared.sub_pending(self.outbox.len(), bytes);
                            self.outbox.clear();
                        }
                    }
                }
                self.transport = Transport::Websocket {
                    ws: up.ws,
                    unflushed: up.reply_pending,
                    read: super::ReadGate::new(&self.shared),
                };
                self.shared
                    .transport
                    .store(TransportKind::WebSocket as u8, Ordering::Release);
            }
            // Anything else during an upgrade aborts it, as Node does.
            _ => {
                if let Some(up) = self.upgrading.take() {
                    close_ws_later(up.ws);
                }
            }
        }
        true
    }
}
