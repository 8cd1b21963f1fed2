//! `volley listen`: one JSON line per incoming event, until Ctrl-C.

use std::collections::HashSet;
use std::io::Write;

use serde_json::json;
use tokio::sync::{broadcast, mpsc};
use volley_client::{RawArgs, Socket, SocketEvent};

use crate::cli::ListenArgs;
use crate::connect::{close, connect, connected_note, manager};
use crate::error::Failure;
use crate::note;
use crate::signal::{Stop, unless_stopped};
use crate::value::ArgList;

/// Runs `volley listen`.
pub(crate) async fn run(args: ListenArgs) -> Result<(), Failure> {
    let c = &args.common;
    // Listening for Ctrl-C from the start: once "connected" is printed, it ends cleanly.
    let mut stop = Stop::new()?;
    let manager = manager(c)?;
    let wanted: HashSet<String> = args.events.iter().cloned().collect();
    let (tx, mut incoming) = mpsc::unbounded_channel::<(String, RawArgs)>();
    let connecting = connect(&manager, c, |b| {
        b.on_any(move |_: Socket, event: String, raw: RawArgs| {
            if wanted.is_empty() || wanted.contains(&event) {
                let _ = tx.send((event, raw));
            }
            async {}
        })
    });
    let (socket, mut lifecycle) = unless_stopped(&mut stop, connecting).await?;
    note(c.quiet, &connected_note(&manager, &socket, c));
    // The first `Connect` in `lifecycle` is the connection just noted.
    let mut connected_once = false;
    let outcome = loop {
        tokio::select! {
            () = stop.recv() => break Ok(()),
            Some((event, raw)) = incoming.recv() => {
                if !print_event(&event, &raw) {
                    break Ok(()); // stdout closed (e.g. piped into `head`)
                }
            }
            ev = lifecycle.recv() => match ev {
                Ok(SocketEvent::Disconnect(reason)) if !reason.will_reconnect() => {
                    break Err(Failure::Disconnected(reason.to_string()));
                }
                Ok(SocketEvent::Disconnect(reason)) => {
                    note(c.quiet, &format!("disconnected ({reason}); reconnecting"));
                }
                Ok(SocketEvent::Connect) if !connected_once => connected_once = true,
                Ok(SocketEvent::Connect) => {
                    note(c.quiet, &format!("re{}", connected_note(&manager, &socket, c)));
                }
                Ok(SocketEvent::ConnectError(e)) if e.is_from_server() => {
                    break Err(Failure::Refused {
                        message: e.message().to_owned(),
                        data: e.data().cloned(),
                    });
                }
                Ok(SocketEvent::ConnectError(e)) => {
                    note(c.quiet, &format!("reconnection failed: {}", e.message()));
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    break Err(Failure::Disconnected("the client stopped".into()));
                }
            },
        }
    };
    close(&manager).await;
    outcome
}

/// Prints one event as a JSON line; false when stdout is closed.
fn print_event(event: &str, raw: &RawArgs) -> bool {
    let line = match ArgList::from_raw(raw) {
        Ok(args) => json!({ "event": event, "args": args.to_json() }),
        Err(e) => json!({ "event": event, "error": format!("undecodable arguments: {e}") }),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").and_then(|()| out.flush()).is_ok()
}
