//! Connecting: the manager from the common options, and a first connection that fails fast
//! with the right [`Failure`] instead of retrying.

use tokio::sync::broadcast;
use volley_client::{
    BuildError, ConnectError, Manager, ManagerEvent, Parser, Socket, SocketBuilder, SocketEvent,
    TransportError, TransportErrorKind, TransportKind,
};

use crate::cli::{Common, Transport};
use crate::error::Failure;

/// The manager for these options (it connects when its first socket does).
pub(crate) fn manager(c: &Common) -> Result<Manager, Failure> {
    let mut b = Manager::builder(&c.url)
        .path(&c.path)
        .timeout(Some(c.connect_timeout))
        .parser(if c.msgpack {
            Parser::MsgPack
        } else {
            Parser::Json
        });
    b = match c.transport {
        Some(Transport::Websocket) => b.transports(&[TransportKind::WebSocket]),
        Some(Transport::Polling) => b.transports(&[TransportKind::Polling]),
        None => b,
    };
    for q in &c.query {
        let (k, v) = q
            .split_once('=')
            .ok_or_else(|| Failure::Usage(format!("--query {q:?}: expected KEY=VALUE")))?;
        b = b.query(k, v);
    }
    for h in &c.header {
        let (k, v) = h
            .split_once(':')
            .ok_or_else(|| Failure::Usage(format!("--header {h:?}: expected NAME:VALUE")))?;
        b = b.header(k.trim(), v.trim());
    }
    b.build().map_err(|e| match e {
        BuildError::InvalidUrl(m) => Failure::BadUrl(format!("{:?}: {m}", c.url)),
        BuildError::InvalidHeader(m) => Failure::Usage(format!("--header: {m}")),
        other => Failure::Other(other.to_string()),
    })
}

/// The `auth` option, parsed.
fn auth(c: &Common) -> Result<Option<serde_json::Value>, Failure> {
    let Some(text) = &c.auth else {
        return Ok(None);
    };
    match serde_json::from_str(text) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(Some(v)),
        Ok(_) => Err(Failure::Usage("--auth must be a JSON object".into())),
        Err(e) => Err(Failure::Usage(format!("--auth: invalid JSON: {e}"))),
    }
}

/// Connects the namespace socket that `setup` configures, and waits until the namespace
/// accepts it. Returns the socket and its lifecycle events from before it connected (the
/// first is its `Connect`), so that nothing that follows is missed.
///
/// The first connection does not retry: a transport error ends it with the error's kind
/// (unreachable, timeout), a refusal with the server's message and `data`, and the whole
/// connection (Engine.IO handshake and namespace CONNECT) is bounded by the connect timeout.
/// Afterwards the manager reconnects as the official client does.
pub(crate) async fn connect(
    manager: &Manager,
    c: &Common,
    setup: impl FnOnce(SocketBuilder) -> SocketBuilder,
) -> Result<(Socket, broadcast::Receiver<SocketEvent>), Failure> {
    let mut builder = manager.socket(&c.ns);
    if let Some(auth) = auth(c)? {
        builder = builder.auth(auth);
    }
    let socket = setup(builder).build();
    // Subscribed before connecting, so the first failure cannot be missed.
    let mut events = manager.events();
    let lifecycle = socket.events();
    socket.connect();
    let first_failure = async {
        loop {
            match events.recv().await {
                Ok(ManagerEvent::Error(e)) => return transport_failure(&e, c),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Failure::Other("the client stopped".into());
                }
            }
        }
    };
    let outcome = tokio::time::timeout(c.connect_timeout, async {
        tokio::select! {
            r = socket.wait_connected() => r.map_err(connect_failure),
            f = first_failure => Err(f),
        }
    })
    .await;
    match outcome {
        Ok(Ok(())) => Ok((socket, lifecycle)),
        Ok(Err(f)) => {
            manager.close();
            Err(f)
        }
        Err(_) => {
            manager.close();
            Err(connect_timeout(c))
        }
    }
}

/// The failure for a connection that took longer than `--connect-timeout`.
fn connect_timeout(c: &Common) -> Failure {
    Failure::Timeout(format!(
        "not connected to {} (namespace {}) within {}",
        c.url,
        c.ns,
        humantime::format_duration(c.connect_timeout)
    ))
}

/// The failure for a connection that could not be opened.
fn transport_failure(e: &TransportError, c: &Common) -> Failure {
    let m = e.message().to_owned();
    match e.kind() {
        TransportErrorKind::Timeout => connect_timeout(c),
        TransportErrorKind::InvalidConfig => Failure::BadUrl(m),
        TransportErrorKind::Http => Failure::Unreachable(format!("HTTP error: {m}")),
        TransportErrorKind::Protocol => {
            Failure::Unreachable(format!("not a Socket.IO v5 server? {m}"))
        }
        _ => Failure::Unreachable(m),
    }
}

/// The failure for a socket the namespace did not accept.
fn connect_failure(e: ConnectError) -> Failure {
    if e.is_from_server() {
        Failure::Refused {
            message: e.message().to_owned(),
            data: e.data().cloned(),
        }
    } else {
        Failure::Unreachable(e.message().to_owned())
    }
}

/// What a connected client says on stderr (unless `--quiet`).
pub(crate) fn connected_note(manager: &Manager, socket: &Socket, c: &Common) -> String {
    let transport = match manager.transport() {
        Some(TransportKind::WebSocket) => "websocket",
        Some(TransportKind::Polling) => "polling",
        _ => "unknown",
    };
    let id = socket.id().map(|i| i.to_string()).unwrap_or_default();
    format!(
        "connected to {} namespace {} (socket {id}, {transport})",
        c.url, c.ns
    )
}

/// Closes the manager's connection (its sockets leave their namespaces first) and waits
/// until it is closed, so that what was emitted before is sent before the process exits.
pub(crate) async fn close(manager: &Manager) {
    let mut events = manager.events();
    let connected = manager.transport().is_some();
    manager.close();
    if !connected {
        return;
    }
    let closed = async {
        loop {
            match events.recv().await {
                Ok(ManagerEvent::Close(_)) | Err(broadcast::error::RecvError::Closed) => break,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
            }
        }
    };
    // The client itself bounds its close (1 s); this only guards against a bug.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), closed).await;
}
