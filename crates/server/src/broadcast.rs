//! `BroadcastOperator`: `to` / `except` / `local` / `volatile` / `timeout`, then emit or a
//! utility method, all through the namespace's adapter so they go cluster-wide with a
//! cluster adapter.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use crate::FromArgs;
use crate::adapter::{
    AckCollector, AckSink, AckStream, AdapterError, BroadcastOptions, BroadcastPacket, Room,
    SocketInfo,
};
use crate::error::{AckError, EmitError};
use crate::namespace::NsInner;
use crate::{Args, ArgsDyn, One, RawArgs, SocketId};
use volley_core::DEFAULT_ACK_TIMEOUT;
use volley_core::args::check_event_name;

/// One room or several, for `to`, `except`, `join`, ...
pub trait IntoRooms {
    /// The rooms.
    fn into_rooms(self) -> Vec<Room>;
}

impl IntoRooms for &str {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self)]
    }
}

impl IntoRooms for String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self)]
    }
}

impl IntoRooms for &String {
    fn into_rooms(self) -> Vec<Room> {
        vec![Room::from(self.as_str())]
    }
}

impl IntoRooms for Room {
    fn into_rooms(self) -> Vec<Room> {
        vec![self]
    }
}

impl IntoRooms for SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.into()]
    }
}

impl IntoRooms for &SocketId {
    fn into_rooms(self) -> Vec<Room> {
        vec![self.as_arc().clone()]
    }
}

impl<T: IntoRooms> IntoRooms for Vec<T> {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms + Clone, const N: usize> IntoRooms for [T; N] {
    fn into_rooms(self) -> Vec<Room> {
        self.into_iter().flat_map(IntoRooms::into_rooms).collect()
    }
}

impl<T: IntoRooms + Clone> IntoRooms for &[T] {
    fn into_rooms(self) -> Vec<Room> {
        self.iter()
            .cloned()
            .flat_map(IntoRooms::into_rooms)
            .collect()
    }
}

/// Selects sockets of a namespace, then emits to them or runs a utility method on them.
///
/// Made by [`SocketIo`](crate::SocketIo), [`Namespace`](crate::Namespace) and
/// [`Socket`](crate::Socket) (`to`, `except`, `broadcast`, ...; from a socket, the socket
/// itself is excluded), and refined by chaining; it goes through the namespace's adapter, so
/// cluster-wide with a cluster adapter.
///
/// ```
/// use std::time::Duration;
/// use volley::{Socket, SocketIo};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let io = SocketIo::builder().build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     let team = socket.handshake().auth()["team"].as_str().unwrap_or("none").to_owned();
///     socket.join(team);
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let mut players = Vec::new();
/// # for team in ["red", "red", "blue"] {
/// #     let answer = format!("{team} ready");
/// #     players.push(volley_client::Manager::builder(&url).build()?.socket("/")
/// #         .auth(serde_json::json!({ "team": team }))
/// #         .on("ready?", move |_: volley_client::Socket, ack: volley_client::AckSender| {
/// #             let answer = answer.clone();
/// #             async move { let _ = ack.send(&answer); }
/// #         })
/// #         .connect().await?);
/// # }
/// // Three players are connected: two in the room "red", one in "blue". Each answers
/// // "ready?" with its team and " ready".
/// io.to("red").emit("score", &3)?;
/// io.except("blue").volatile().emit("tick", &1)?; // dropped for whoever cannot take it now
///
/// // Ask every red player and collect their answers, waiting at most a second.
/// let answers = io
///     .to("red")
///     .timeout(Duration::from_secs(1))
///     .emit_with_ack::<String, _>("ready?", &())
///     .collect_all()
///     .await;
/// assert_eq!(answers.len(), 2);
/// assert!(answers.iter().all(|a| a.result.as_deref().is_ok_and(|r| r == "red ready")));
///
/// assert_eq!(io.to(["red", "blue"]).socket_ids().await?.len(), 3);
/// io.to("blue").disconnect_sockets(false);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Arc<NsInner>,
    opts: BroadcastOptions,
    timeout: Option<Duration>,
}

impl fmt::Debug for BroadcastOperator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BroadcastOperator")
            .field("namespace", &self.ns.name)
            .field("opts", &self.opts)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Arc<NsInner>) -> Self {
        Self {
            ns,
            opts: BroadcastOptions::default(),
            timeout: None,
        }
    }

    /// Adds target rooms (union).
    pub fn to(mut self, rooms: impl IntoRooms) -> Self {
        for r in rooms.into_rooms() {
            if !self.opts.rooms.contains(&r) {
                self.opts.rooms.push(r);
            }
        }
        self
    }

    /// Same as [`to`](Self::to).
    pub fn within(self, rooms: impl IntoRooms) -> Self {
        self.to(rooms)
    }

    /// Excludes the sockets in `rooms`.
    pub fn except(mut self, rooms: impl IntoRooms) -> Self {
        for r in rooms.into_rooms() {
            if !self.opts.except.contains(&r) {
                self.opts.except.push(r);
            }
        }
        self
    }

    /// Only this server's sockets.
    pub fn local(mut self) -> Self {
        self.opts.flags.local = true;
        self
    }

    /// Drops the packet for sockets that cannot take it now; never reorders the others.
    pub fn volatile(mut self) -> Self {
        self.opts.flags.volatile = true;
        self
    }

    /// The acknowledgement timeout of [`emit_with_ack`](Self::emit_with_ack).
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The selection so far.
    pub fn options(&self) -> &BroadcastOptions {
        &self.opts
    }

    /// Emits an event with one argument to every selected socket. The packet is encoded
    /// once and shared by all recipients.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.emit_dyn(event, &One(data))
    }

    /// Emits an event with several arguments (a tuple, `()`, [`RawArgs`]).
    pub fn emit_args(&self, event: &str, args: impl Args) -> Result<(), EmitError> {
        self.emit_dyn(event, &args)
    }

    /// On a dynamic namespace's handle, the same operation on every namespace it created.
    fn children(&self) -> Option<Vec<Self>> {
        self.ns.is_parent.then(|| {
            self.ns
                .children()
                .into_iter()
                .map(|ns| Self {
                    ns,
                    opts: self.opts.clone(),
                    timeout: self.timeout,
                })
                .collect()
        })
    }

    fn emit_dyn(&self, event: &str, args: &dyn ArgsDyn) -> Result<(), EmitError> {
        if let Some(children) = self.children() {
            return children.iter().try_for_each(|c| c.emit_dyn(event, args));
        }
        check_event_name(event)?;
        let encoded = self.ns.parser.event(&self.ns.name, event, args, None)?;
        self.ns
            .adapter
            .broadcast(&BroadcastPacket::new(encoded), &self.opts);
        Ok(())
    }

    /// Emits with one argument and collects every selected socket's acknowledgement,
    /// cluster-wide, until all answered or the timeout (the server's ack timeout unless
    /// [`timeout`](Self::timeout) set one).
    pub fn emit_with_ack<T: FromArgs, D: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &D,
    ) -> AckStream<T> {
        self.emit_with_ack_dyn(event, &One(data))
    }

    /// Like [`emit_with_ack`](Self::emit_with_ack) with several arguments.
    pub fn emit_args_with_ack<T: FromArgs>(&self, event: &str, args: impl Args) -> AckStream<T> {
        self.emit_with_ack_dyn(event, &args)
    }

    fn emit_with_ack_dyn<T: FromArgs>(&self, event: &str, args: &dyn ArgsDyn) -> AckStream<T> {
        let timeout = self
            .timeout
            .or_else(|| self.ns.io().map(|io| io.config.ack_timeout))
            .unwrap_or(DEFAULT_ACK_TIMEOUT);
        let state = AckCollector::new();
        if let Err(e) = check_event_name(event) {
            state.fail(AckError::Emit(e));
            return AckStream::new(state, timeout, None);
        }
        let id = self.ns.next_ack_id();
        let encoded = match self.ns.parser.event(&self.ns.name, event, args, Some(id)) {
            Ok(e) => e,
            Err(e) => {
                state.fail(AckError::Emit(EmitError::Serialize(e)));
                return AckStream::new(state, timeout, None);
            }
        };
        let sink: Arc<dyn AckSink> = state.clone();
        let mut opts = self.opts.clone();
        opts.flags.timeout = Some(timeout);
        self.ns
            .adapter
            .broadcast_with_ack(&BroadcastPacket::new(encoded), id, &opts, sink);
        let servers = if self.opts.flags.local {
            None
        } else {
            Some(self.ns.adapter.server_count())
        };
        AckStream::new(state, timeout, servers)
    }

    /// The selected sockets, wherever they are connected: id, handshake, rooms, data, and
    /// handles to emit to them, make them join or leave rooms, or disconnect them.
    pub async fn fetch_sockets(&self) -> Result<Vec<RemoteSocket>, AdapterError> {
        if let Some(children) = self.children() {
            let mut all = Vec::new();
            for c in children {
                all.extend(Box::pin(c.fetch_sockets()).await?);
            }
            return Ok(all);
        }
        let list = self.ns.adapter.fetch_sockets(&self.opts).await?;
        Ok(list
            .into_iter()
            .map(|info| RemoteSocket {
                ns: self.ns.clone(),
                info,
            })
            .collect())
    }

    /// The ids of the selected sockets, wherever they are connected (Node's `allSockets`):
    /// cheaper than [`fetch_sockets`](Self::fetch_sockets) when only ids or a count are needed.
    pub async fn socket_ids(&self) -> Result<Vec<String>, AdapterError> {
        if let Some(children) = self.children() {
            let mut all = Vec::new();
            for c in children {
                all.extend(c.ns.adapter.sockets(&c.opts).await?);
            }
            return Ok(all);
        }
        self.ns.adapter.sockets(&self.opts).await
    }

    /// Makes the selected sockets join `rooms`.
    pub fn sockets_join(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for op in self.children().unwrap_or_else(|| vec![self.clone()]) {
            op.ns.adapter.add_sockets(&op.opts, &rooms);
        }
    }

    /// Makes the selected sockets leave `rooms`.
    pub fn sockets_leave(&self, rooms: impl IntoRooms) {
        let rooms = rooms.into_rooms();
        for op in self.children().unwrap_or_else(|| vec![self.clone()]) {
            op.ns.adapter.del_sockets(&op.opts, &rooms);
        }
    }

    /// Disconnects the selected sockets; with `close`, their whole connections.
    pub fn disconnect_sockets(&self, close: bool) {
        for op in self.children().unwrap_or_else(|| vec![self.clone()]) {
            op.ns.adapter.disconnect_sockets(&op.opts, close);
        }
    }
}

/// Sends an event to the other servers of the cluster; with `ack`, collects one answer per
/// other server.
pub(crate) fn server_side_emit<T: FromArgs>(
    ns: &Arc<NsInner>,
    event: &str,
    args: &dyn ArgsDyn,
    ack: Option<Duration>,
) -> impl std::future::Future<Output = Result<Option<AckStream<T>>, AdapterError>> + Send + 'static
{
    // The arguments are encoded before the future starts, so it holds no borrow of them
    // and stays `Send` whatever they are.
    let raw = RawArgs::from_args(ns.parser, args).map_err(AdapterError::from);
    let ns = ns.clone();
    let event = event.to_owned();
    async move {
        let raw = raw?;
        let Some(timeout) = ack else {
            ns.adapter.server_side_emit(&event, &raw, None)?;
            return Ok(None);
        };
        let others = ns.adapter.server_count().await?.saturating_sub(1);
        let state = AckCollector::new();
        state.client_count(others);
        let sink: Arc<dyn AckSink> = state.clone();
        ns.adapter.server_side_emit(&event, &raw, Some(sink))?;
        Ok(Some(AckStream::new(state, timeout, None)))
    }
}

/// A socket returned by `fetch_sockets`, local or on another server of the cluster.
#[derive(Clone)]
pub struct RemoteSocket {
    ns: Arc<NsInner>,
    info: SocketInfo,
}

impl fmt::Debug for RemoteSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteSocket")
            .field("info", &self.info)
            .finish()
    }
}

impl RemoteSocket {
    /// The socket id.
    pub fn id(&self) -> &SocketId {
        &self.info.id
    }

    /// The handshake, in Node's JSON shape.
    pub fn handshake(&self) -> &Value {
        &self.info.handshake
    }

    /// The rooms the socket was in when fetched.
    pub fn rooms(&self) -> &[Room] {
        &self.info.rooms
    }

    /// The socket's data when fetched.
    pub fn data(&self) -> &Value {
        &self.info.data
    }

    fn only_me(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.ns.clone()).to(self.info.id.clone())
    }

    /// Emits to this socket.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.only_me().emit(event, data)
    }

    /// Makes this socket join rooms.
    pub fn join(&self, rooms: impl IntoRooms) {
        self.only_me().sockets_join(rooms);
    }

    /// Makes this socket leave rooms.
    pub fn leave(&self, rooms: impl IntoRooms) {
        self.only_me().sockets_leave(rooms);
    }

    /// Disconnects this socket; with `close`, its whole connection.
    pub fn disconnect(&self, close: bool) {
        self.only_me().disconnect_sockets(close);
    }
}
