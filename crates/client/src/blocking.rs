//! A synchronous facade for programs without an async runtime.
//!
//! [`Client`] owns a small multi-threaded tokio runtime (one worker) on which the connection
//! runs; its methods block the calling thread. It refuses to be created or to block inside
//! an async context (that would stall the runtime), returning [`BuildError::Runtime`]
//! instead of panicking, and it shuts its runtime down without blocking when dropped.
//!
//! ```no_run
//! use std::time::Duration;
//! use volley_client::blocking::Client;
//!
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::connect("http://localhost:3000", "/", Duration::from_secs(10))?;
//! client.on("news", |text: String| println!("{text}"));
//! client.emit("hello", "world")?;
//! let answer: String = client.emit_with_ack("ping", &(), Duration::from_secs(2))?;
//! # Ok(()) }
//! ```

use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{AckError, BuildError, ConnectError, Data, EmitError, ManagerBuilder, Socket};

/// Why a blocking call failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The client could not be set up.
    Build(BuildError),
    /// The namespace connection failed.
    Connect(ConnectError),
    /// The connection did not come up in time.
    Timeout,
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Build(e) => e.fmt(f),
            Self::Connect(e) => write!(f, "connect error: {e}"),
            Self::Timeout => f.write_str("the connection did not come up in time"),
        }
    }
}

impl std::error::Error for Error {}

fn not_in_runtime() -> Result<(), BuildError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(BuildError::Runtime(
            "the blocking client cannot block inside an async runtime; use the async API".into(),
        ));
    }
    Ok(())
}

/// A socket with its own runtime; see the [module docs](self).
#[derive(Debug)]
pub struct Client {
    rt: Option<tokio::runtime::Runtime>,
    socket: Socket,
}

impl Client {
    /// Connects to namespace `nsp` of `url` with the default options, waiting at most
    /// `timeout` for the namespace to accept.
    pub fn connect(url: &str, nsp: &str, timeout: Duration) -> Result<Self, Error> {
        Self::connect_with(crate::Manager::builder(url), nsp, timeout)
    }

    /// Like [`connect`](Self::connect) with a configured manager builder.
    pub fn connect_with(
        builder: ManagerBuilder,
        nsp: &str,
        timeout: Duration,
    ) -> Result<Self, Error> {
        not_in_runtime().map_err(Error::Build)?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("volley-client")
            .enable_all()
            .build()
            .map_err(|e| Error::Build(BuildError::Runtime(e.to_string())))?;
        let socket = rt.block_on(async {
            let manager = builder.build().map_err(Error::Build)?;
            let socket = manager.socket(nsp).build();
            socket.connect();
            match tokio::time::timeout(timeout, socket.wait_connected()).await {
                Ok(Ok(())) => Ok(socket),
                Ok(Err(e)) => Err(Error::Connect(e)),
                Err(_) => Err(Error::Timeout),
            }
        });
        match socket {
            Ok(socket) => Ok(Self {
                rt: Some(rt),
                socket,
            }),
            Err(e) => {
                rt.shutdown_background();
                Err(e)
            }
        }
    }

    fn block_on<F: Future>(&self, f: F) -> Result<F::Output, BuildError> {
        not_in_runtime()?;
        match &self.rt {
            Some(rt) => Ok(rt.block_on(f)),
            None => Err(BuildError::Runtime("the client is closed".into())),
        }
    }

    /// The async socket underneath, for everything this facade does not wrap.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Handles an event with a plain closure taking the deserialized arguments (see
    /// [`Data`]). It runs on the client's runtime thread: keep it short.
    pub fn on<T, F>(&self, event: &str, f: F)
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(T) + Send + Sync + 'static,
    {
        let f = std::sync::Arc::new(f);
        self.socket.on(event, move |_: Socket, Data(v): Data<T>| {
            let f = f.clone();
            async move { f(v) }
        });
    }

    /// Emits an event with one argument (buffered while disconnected).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        self.socket.emit(event, data)
    }

    /// Emits an event and blocks until the server acknowledges it, at most `timeout`.
    pub fn emit_with_ack<T>(
        &self,
        event: &str,
        data: &(impl Serialize + ?Sized),
        timeout: Duration,
    ) -> Result<T, AckError>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let fut = self.socket.timeout(timeout).emit_with_ack::<T>(event, data);
        self.block_on(fut)
            .map_err(|_| AckError::Emit(EmitError::Closed))?
    }

    /// Whether the namespace connection is up.
    pub fn connected(&self) -> bool {
        self.socket.connected()
    }

    /// Whether the last namespace connection restored the previous session (see
    /// [`Socket::recovered`](crate::Socket::recovered)).
    pub fn recovered(&self) -> bool {
        self.socket.recovered()
    }

    /// Disconnects and closes the connection, waiting briefly for the close to go out.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.socket.manager().close();
        if let Some(rt) = self.rt.take() {
            if not_in_runtime().is_ok() {
                rt.block_on(async { tokio::time::sleep(Duration::from_millis(50)).await });
            }
            rt.shutdown_background();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.shutdown();
    }
}
