//! Application state for handlers: [`State<T>`], read from a [`StateMap`] the builder fills.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A handler argument: a clone of the application state of type `T` given to the builder
/// (`.state(value)`), as axum's `State`. Use an `Arc` (or a type that is one inside) for
/// anything bigger than a handle.
///
/// One value per type: give several types for several values. A handler asking for a type
/// the builder was not given is not run (logged at debug level).
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use volley::{AckSender, Data, Socket, SocketIo, State};
///
/// /// What the server remembers, shared by every handler.
/// #[derive(Clone, Default)]
/// struct Scores(Arc<Mutex<HashMap<String, u32>>>);
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let scores = Scores::default();
/// let io = SocketIo::builder().state(scores.clone()).build();
/// io.of("/").on_connection(|socket: Socket| async move {
///     socket.on(
///         "score",
///         |_: Socket, Data(player): Data<String>, State(scores): State<Scores>, ack: AckSender| async move {
///             let mut scores = scores.0.lock().unwrap();
///             let score = scores.entry(player).or_default();
///             *score += 1;
///             let _ = ack.send(&*score);
///         },
///     );
/// });
/// # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
/// # let url = format!("http://{}", listener.local_addr()?);
/// # tokio::spawn(volley::serve(listener, io.service()));
/// # let client = volley_client::Manager::builder(&url).build()?.socket("/").connect().await?;
/// // From a connected client (volley-client here):
/// let first: u32 = client.emit_with_ack("score", "ada").await?;
/// let second: u32 = client.emit_with_ack("score", "ada").await?;
/// assert_eq!((first, second), (1, 2));
/// assert_eq!(scores.0.lock().unwrap()["ada"], 2); // the builder's value, shared
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State<T>(pub T);

/// Values by type, one per type; what [`State<T>`] reads.
#[derive(Default, Clone)]
pub struct StateMap {
    values: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl fmt::Debug for StateMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateMap")
            .field("values", &self.values.len())
            .finish()
    }
}

impl StateMap {
    /// Adds a value, replacing the previous one of the same type.
    pub fn insert<T: Clone + Send + Sync + 'static>(&mut self, value: T) {
        self.values.insert(TypeId::of::<T>(), Arc::new(value));
    }

    /// Adds a value to a shared map (what builders hold), copying it if it is shared.
    pub fn insert_into<T: Clone + Send + Sync + 'static>(slot: &mut Option<Arc<Self>>, value: T) {
        Arc::make_mut(slot.get_or_insert_with(Default::default)).insert(value);
    }

    /// A clone of the value of type `T`, if one was given.
    pub fn get<T: Clone + Send + Sync + 'static>(&self) -> Option<T> {
        self.values
            .get(&TypeId::of::<T>())
            .and_then(|v| v.downcast_ref::<T>())
            .cloned()
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}
