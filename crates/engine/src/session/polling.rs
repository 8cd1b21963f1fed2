//! The long-polling transport: GETs are parked until there is something to send, POSTs carry
//! payloads of packets.

use bytes::Bytes;
use tokio::sync::oneshot;
use volley_proto::engine::{payload, v3};

use super::outbox::{Framing, payload_of};
use super::{Incoming, Transport, control_body};
use crate::error::{CloseReason, EngineError};

/// What became of the parked GET when the driver looked at it.
pub(super) enum Answer {
    /// Nothing more to do until woken (answered, or still parked).
    Waiting,
    /// The GET went away before its answer: look at everything again.
    Again,
    /// It carried the close packet; the session is over.
    Closed,
}

impl Incoming {
    /// A long-polling GET arrived.
    pub(super) fn on_poll(&mut self, reply: oneshot::Sender<Result<Bytes, EngineError>>) {
        match &mut self.transport {
            Transport::Websocket { .. } => {
                let _ = reply.send(Err(EngineError::BadRequest));
            }
            Transport::Polling { parked } => {
                if let Some(first) = parked.take() {
                    // Two GETs at once: Node closes the session; the first request gets
                    // the close packet and the second an error.
                    let _ = first.send(Ok(control_body(self.shared.v3, b"1")));
                    let _ = reply.send(Err(EngineError::Overlap));
                    self.finish(CloseReason::TransportError);
                } else {
                    *parked = Some(reply);
                }
            }
        }
    }

    /// A long-polling POST arrived, its body read whole.
    pub(super) fn on_post(
        &mut self,
        body: Bytes,
        binary: bool,
        reply: oneshot::Sender<Result<(), EngineError>>,
    ) {
        if matches!(self.transport, Transport::Websocket { .. }) {
            let _ = reply.send(Err(EngineError::BadRequest));
            return;
        }
        let mut failed = false;
        let packets: Box<dyn Iterator<Item = _>> = match (self.shared.v3, binary) {
            (false, _) => Box::new(payload::decode(body)),
            (true, false) => Box::new(v3::decode_text(body)),
            (true, true) => Box::new(v3::decode_binary(body)),
        };
        for packet in packets {
            match packet {
                Ok(p) => {
                    if let Some(m) = self.on_packet(p) {
                        self.inbox.push_back(m);
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "bad polling payload");
                    failed = true;
                    break;
                }
            }
        }
        if failed {
            let _ = reply.send(Err(EngineError::BadRequest));
            self.inbox.clear();
            self.finish(CloseReason::ParseError);
        } else {
            let _ = reply.send(Ok(()));
        }
    }

    /// How this session's long-polling payloads are framed.
    pub(super) fn v3_framing(&self) -> Framing {
        match (self.shared.v3, self.shared.supports_binary) {
            (false, _) => Framing::V4,
            (true, supports_binary) => Framing::V3 { supports_binary },
        }
    }

    /// Answers the parked GET if there is something to answer: queued frames, the close
    /// packet, or a noop that lets the client go on with an upgrade.
    pub(super) fn answer_parked_get(&mut self) -> Answer {
        let Transport::Polling { parked } = &mut self.transport else {
            return Answer::Waiting;
        };
        let Some(reply) = parked.take() else {
            return Answer::Waiting;
        };
        if !self.outbox.is_empty() {
            let (body, bytes) = payload_of(&self.outbox, self.v3_framing());
            match reply.send(Ok(body)) {
                Ok(()) => {
                    self.shared.sub_pending(self.outbox.len(), bytes);
                    self.outbox.clear();
                }
                Err(_) => return Answer::Again,
            }
        } else if let Some(reason) = self.closing {
            // What was queued went out in earlier answers; the close packet gets one of its
            // own, as Node sends it. In the same payload the official client would act on
            // the close before the packets before it (a DISCONNECT would read as "transport
            // close").
            let _ = reply.send(Ok(control_body(self.shared.v3, b"1")));
            self.finish(reason);
            return Answer::Closed;
        } else if self.upgrading.as_ref().is_some_and(|u| u.probed) {
            let _ = reply.send(Ok(control_body(self.shared.v3, b"6")));
        } else if !reply.is_closed() {
            *parked = Some(reply);
        }
        Answer::Waiting
    }
}
