//! The retry queue (`SocketBuilder::retries`): at-least-once delivery, one event at a time.

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot, watch};
use volley_core::parser::EventBody;

use super::state::{AckTx, SocketInner};
use super::{Status, read};
use crate::error::AckError;

/// An item of the retry queue.
pub(super) struct Queued {
    pub(super) body: EventBody,
    pub(super) reply: Option<AckTx>,
}

/// Sends queued events one at a time, each until acknowledged or out of tries: the official
/// client's `retries` (at-least-once delivery, in order).
pub(super) async fn retry_loop(
    socket: Weak<SocketInner>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    mut status: watch::Receiver<Status>,
) {
    while let Some(item) = rx.recv().await {
        let mut tries: u32 = 0;
        let result = loop {
            if status.wait_for(|s| *s == Status::Connected).await.is_err() {
                return;
            }
            let Some(inner) = socket.upgrade() else {
                return;
            };
            let (retries, timeout) = {
                let o = read(&inner.opts);
                (o.retries, o.ack_timeout)
            };
            tries = tries.saturating_add(1);
            let (tx, reply) = oneshot::channel();
            let id = inner.next_id();
            let packet = inner.parser.event_packet(&inner.nsp, &item.body, Some(id));
            if let Err(e) = inner.push(packet, Some(id), Some(tx), false) {
                break Err(AckError::Emit(e));
            }
            drop(inner);
            let outcome = match timeout {
                Some(d) => match tokio::time::timeout(d, reply).await {
                    Ok(r) => r.unwrap_or(Err(AckError::Disconnected)),
                    Err(_) => {
                        if let Some(inner) = socket.upgrade() {
                            inner.forget_ack(id);
                        }
                        Err(AckError::Timeout)
                    }
                },
                None => reply.await.unwrap_or(Err(AckError::Disconnected)),
            };
            match outcome {
                Ok(args) => break Ok(args),
                Err(e) if tries > retries => break Err(e),
                Err(e) => tracing::debug!(tries, error = %e, "retrying an unacknowledged event"),
            }
        };
        if let Some(reply) = item.reply {
            let _ = reply.send(result);
        }
    }
}
