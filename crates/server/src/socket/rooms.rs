//! A socket's rooms, and the broadcasts that start from it.

use super::Socket;
use crate::adapter::Room;
use crate::broadcast::{BroadcastOperator, IntoRooms};

impl Socket {
    /// Joins rooms (one, or several). Rooms live in the namespace's adapter: a broadcast
    /// [`to`](Self::to) a room reaches its sockets, cluster-wide with a cluster adapter.
    ///
    /// ```
    /// use volley::{AckSender, Socket, SocketIo};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let io = SocketIo::builder().build();
    /// io.of("/").on_connection(|socket: Socket| async move {
    ///     socket.on("rooms", |socket: Socket, ack: AckSender| async move {
    ///         socket.join(["news", "sport"]);
    ///         socket.leave("sport");
    ///         let rooms: Vec<String> = socket.rooms().iter().map(|r| r.to_string()).collect();
    ///         let _ = ack.send(&rooms);
    ///     });
    /// });
    /// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    /// # let url = format!("http://{}", listener.local_addr()?);
    /// # tokio::spawn(volley::serve(listener, io.service()));
    /// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
    /// // From a connected client (volley-client here):
    /// let rooms: Vec<String> = client.emit_args_with_ack("rooms", ()).await?;
    /// // "news", and the room named by the socket's id that every socket is in.
    /// assert_eq!(rooms.len(), 2);
    /// assert!(rooms.contains(&"news".to_string()));
    /// assert!(rooms.contains(&client.id().unwrap().to_string()));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(&self, rooms: impl IntoRooms) {
        self.inner
            .ns
            .adapter
            .add_all(self.id(), &rooms.into_rooms());
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.inner.ns.adapter.del(self.id(), room);
    }

    /// Leaves every room but its own.
    pub fn leave_all(&self) {
        for room in self.rooms() {
            if &*room != self.id() {
                self.inner.ns.adapter.del(self.id(), &room);
            }
        }
    }

    /// The rooms the socket is in (its own id room included).
    pub fn rooms(&self) -> Vec<Room> {
        self.inner.ns.adapter.socket_rooms(self.id())
    }

    /// A broadcast to other sockets of the namespace: every one but this socket.
    pub fn broadcast(&self) -> BroadcastOperator {
        BroadcastOperator::new(self.inner.ns.clone()).except(self.id())
    }

    /// A broadcast to the sockets in `rooms`, this socket excluded (as Node's
    /// `socket.to(room)`).
    pub fn to(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().to(rooms)
    }

    /// Same as [`to`](Self::to).
    pub fn within(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.to(rooms)
    }

    /// A broadcast to every other socket except those in `rooms`.
    pub fn except(&self, rooms: impl IntoRooms) -> BroadcastOperator {
        self.broadcast().except(rooms)
    }
}
