//! The shared state of a namespace socket: its options, connection state, handlers, pending
//! acknowledgements, and the bounded send buffer of a disconnected socket.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use volley_core::{Encoded, Parser};

use super::retry::{Queued, retry_loop};
use super::{Overflow, SocketEvent, Status, lock, read};
use crate::error::{AckError, EmitError};
use crate::handler::{
    AnyHandler, BoxFuture, ConnectErrorHandler, ConnectHandler, DisconnectHandler, ErasedHandler,
};
use crate::manager::Cmd;
use crate::{RawArgs, SocketId};

/// How `auth` is produced for each CONNECT.
#[derive(Clone)]
pub(crate) enum Auth {
    None,
    Static(Value),
    Dynamic(Arc<dyn Fn() -> BoxFuture<Option<Value>> + Send + Sync>),
}

#[derive(Clone)]
pub(crate) struct SocketOptions {
    pub(crate) auth: Auth,
    pub(crate) ack_timeout: Option<Duration>,
    pub(crate) retries: u32,
    pub(crate) buffer_capacity: usize,
    pub(crate) overflow: Overflow,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            auth: Auth::None,
            ack_timeout: None,
            retries: 0,
            buffer_capacity: 1024,
            overflow: Overflow::Reject,
        }
    }
}

pub(crate) type AckTx = oneshot::Sender<Result<RawArgs, AckError>>;

/// An emit waiting in the send buffer.
pub(crate) struct Buffered {
    pub(crate) packet: Encoded,
    pub(crate) ack: Option<u64>,
}

#[derive(Default)]
pub(crate) struct SocketState {
    /// Wants to be connected (the official client's `socket.active`).
    pub(crate) active: bool,
    pub(crate) connected: bool,
    pub(crate) sid: Option<SocketId>,
    pub(crate) buffer: VecDeque<Buffered>,
    pub(crate) acks: HashMap<u64, AckTx>,
    /// Events that arrived before the namespace's CONNECT answer (the official client's
    /// `receiveBuffer`), delivered once it comes; bounded like the send buffer.
    pub(crate) received: VecDeque<Received>,
    /// The private session id of the last CONNECT answer (the official client's `_pid`):
    /// set only by a server with connection state recovery on, and never cleared, as in
    /// socket.io-client 4.8 (a server does not restore a session the client left).
    pub(crate) pid: Option<String>,
    /// The offset of the last event handled while `pid` was set (`_lastOffset`).
    pub(crate) last_offset: Option<String>,
    /// Whether the last CONNECT answer restored the previous session (`recovered`).
    pub(crate) recovered: bool,
}

/// An event received before the socket was connected.
pub(crate) struct Received {
    pub(crate) name: String,
    pub(crate) args: RawArgs,
    pub(crate) id: Option<u64>,
}

impl SocketState {
    /// The `auth` of the next CONNECT packet: with a `pid`, `{pid, offset}` then the keys of
    /// `auth`, as socket.io-client's `Object.assign({ pid, offset }, auth)` (an absent offset
    /// is left out, as `JSON.stringify` leaves out `undefined`).
    pub(crate) fn connect_auth(&self, auth: Option<Value>) -> Option<Value> {
        let Some(pid) = &self.pid else {
            return auth;
        };
        let mut o = serde_json::Map::new();
        o.insert("pid".into(), Value::String(pid.clone()));
        if let Some(offset) = &self.last_offset {
            o.insert("offset".into(), Value::String(offset.clone()));
        }
        match auth {
            Some(Value::Object(a)) => o.extend(a),
            // `Object.assign` copies the indexes of an array or a string as keys.
            Some(Value::Array(a)) => {
                o.extend(a.into_iter().enumerate().map(|(i, v)| (i.to_string(), v)));
            }
            Some(Value::String(a)) => o.extend(
                a.encode_utf16()
                    .enumerate()
                    .map(|(i, u)| (i.to_string(), Value::String(String::from_utf16_lossy(&[u])))),
            ),
            _ => {}
        }
        Some(Value::Object(o))
    }

    /// Takes the acknowledgements that are not waiting in the send buffer: those whose
    /// event went out on a connection that is now gone.
    pub(crate) fn take_sent_acks(&mut self) -> Vec<AckTx> {
        let buffered: std::collections::HashSet<u64> =
            self.buffer.iter().filter_map(|b| b.ack).collect();
        let ids: Vec<u64> = self
            .acks
            .keys()
            .copied()
            .filter(|id| !buffered.contains(id))
            .collect();
        ids.into_iter()
            .filter_map(|id| self.acks.remove(&id))
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct Handlers {
    pub(crate) events: HashMap<String, ErasedHandler>,
    pub(crate) any: Vec<AnyHandler>,
    pub(crate) connect: Vec<ConnectHandler>,
    pub(crate) disconnect: Vec<DisconnectHandler>,
    pub(crate) connect_error: Vec<ConnectErrorHandler>,
    /// The senders of [`Socket::event_stream`](crate::Socket::event_stream)s.
    pub(crate) streams: Vec<mpsc::UnboundedSender<(String, RawArgs)>>,
}

pub(crate) struct SocketInner {
    pub(crate) nsp: String,
    pub(crate) parser: Parser,
    pub(crate) cmd: mpsc::UnboundedSender<Cmd>,
    pub(crate) state: Mutex<SocketState>,
    pub(crate) handlers: RwLock<Handlers>,
    pub(crate) opts: RwLock<SocketOptions>,
    pub(crate) status: watch::Sender<Status>,
    pub(crate) events: broadcast::Sender<SocketEvent>,
    pub(super) next_id: AtomicU64,
    pub(super) retry_tx: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
    /// The manager's runtime, so that a socket used from outside it can still spawn.
    pub(super) runtime: tokio::runtime::Handle,
}

impl SocketInner {
    pub(crate) fn new(
        nsp: String,
        parser: Parser,
        cmd: mpsc::UnboundedSender<Cmd>,
        runtime: tokio::runtime::Handle,
    ) -> Self {
        Self {
            nsp,
            parser,
            cmd,
            state: Mutex::default(),
            handlers: RwLock::default(),
            opts: RwLock::default(),
            status: watch::Sender::new(Status::Idle),
            events: broadcast::Sender::new(64),
            next_id: AtomicU64::new(0),
            retry_tx: Mutex::new(None),
            runtime,
        }
    }

    /// Sends a packet now if connected, else buffers it (volatile packets are dropped).
    pub(super) fn push(
        &self,
        packet: Encoded,
        id: Option<u64>,
        ack: Option<AckTx>,
        volatile: bool,
    ) -> Result<(), EmitError> {
        if self.cmd.is_closed() {
            return Err(EmitError::Closed);
        }
        let (capacity, overflow) = {
            let o = read(&self.opts);
            (o.buffer_capacity, o.overflow)
        };
        let dropped;
        {
            let mut st = lock(&self.state);
            if st.connected {
                if let (Some(id), Some(tx)) = (id, ack) {
                    st.acks.insert(id, tx);
                }
                let cmd = Cmd::Send {
                    nsp: self.nsp.clone(),
                    packet,
                    ack: id,
                    volatile,
                };
                if self.cmd.send(cmd).is_err() {
                    if let Some(id) = id {
                        st.acks.remove(&id);
                    }
                    return Err(EmitError::Closed);
                }
                return Ok(());
            }
            if volatile {
                // As in JavaScript: a volatile event is not buffered.
                return Ok(());
            }
            if capacity == 0 {
                return Err(EmitError::BufferFull);
            }
            dropped = if st.buffer.len() >= capacity {
                match overflow {
                    Overflow::Reject => return Err(EmitError::BufferFull),
                    Overflow::DropOldest => st
                        .buffer
                        .pop_front()
                        .and_then(|b| b.ack)
                        .and_then(|id| st.acks.remove(&id)),
                }
            } else {
                None
            };
            if let (Some(id), Some(tx)) = (id, ack) {
                st.acks.insert(id, tx);
            }
            st.buffer.push_back(Buffered { packet, ack: id });
        }
        if let Some(tx) = dropped {
            let _ = tx.send(Err(AckError::Dropped));
        }
        Ok(())
    }

    /// Forgets an acknowledgement that timed out, and its event if it is still buffered.
    pub(super) fn forget_ack(&self, id: u64) {
        let mut st = lock(&self.state);
        st.acks.remove(&id);
        st.buffer.retain(|b| b.ack != Some(id));
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(super) fn retry_queue(self: &Arc<Self>) -> mpsc::UnboundedSender<Queued> {
        let mut slot = lock(&self.retry_tx);
        if let Some(tx) = slot.as_ref() {
            return tx.clone();
        }
        let (tx, rx) = mpsc::unbounded_channel();
        self.runtime.spawn(retry_loop(
            Arc::downgrade(self),
            rx,
            self.status.subscribe(),
        ));
        *slot = Some(tx.clone());
        tx
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::SocketState;

    fn state(pid: Option<&str>, offset: Option<&str>) -> SocketState {
        SocketState {
            pid: pid.map(str::to_owned),
            last_offset: offset.map(str::to_owned),
            ..SocketState::default()
        }
    }

    #[test]
    fn connect_auth_is_object_assign() {
        // No pid: `auth` as it is.
        let st = state(None, Some("o"));
        assert_eq!(st.connect_auth(None), None);
        assert_eq!(st.connect_auth(Some(json!(1))), Some(json!(1)));
        // A pid and no offset yet: `offset: undefined` is left out.
        let st = state(Some("p"), None);
        assert_eq!(st.connect_auth(None), Some(json!({ "pid": "p" })));
        // `auth` keys after, overriding.
        let st = state(Some("p"), Some("o"));
        let auth = st.connect_auth(Some(json!({ "token": "t", "offset": "mine" })));
        assert_eq!(
            auth,
            Some(json!({ "pid": "p", "offset": "mine", "token": "t" }))
        );
        // Indexes of arrays and strings become keys; other values add nothing.
        assert_eq!(
            st.connect_auth(Some(json!(["a", 2]))),
            Some(json!({ "pid": "p", "offset": "o", "0": "a", "1": 2 }))
        );
        assert_eq!(
            st.connect_auth(Some(json!("ab"))),
            Some(json!({ "pid": "p", "offset": "o", "0": "a", "1": "b" }))
        );
        assert_eq!(
            st.connect_auth(Some(json!(true))),
            Some(json!({ "pid": "p", "offset": "o" }))
        );
    }
}
