//! `volley emit`: one event, and its acknowledgement when asked for.

use std::time::Duration;

use volley_client::{AckError, EmitError, Manager, RawArgs};

use crate::cli::EmitArgs;
use crate::connect::{close, connect, connected_note, manager};
use crate::error::Failure;
use crate::note;
use crate::value::ArgList;

/// Runs `volley emit`.
pub(crate) async fn run(args: EmitArgs) -> Result<(), Failure> {
    let c = &args.common;
    let list = ArgList::parse(args.args.as_deref()).map_err(Failure::Usage)?;
    volley_core::args::check_event_name(&args.event)
        .map_err(|e| Failure::Usage(format!("cannot emit: {e}")))?;
    let manager = manager(c)?;
    let (socket, _) = connect(&manager, c, |b| b).await?;
    note(c.quiet, &connected_note(&manager, &socket, c));
    let outcome = if args.ack {
        let reply = socket
            .timeout(args.timeout)
            .emit_args_with_ack::<RawArgs>(&args.event, list)
            .await;
        match reply {
            Ok(raw) => ArgList::from_raw(&raw)
                .map(|shown| println!("{}", shown.to_json()))
                .map_err(|e| Failure::Other(format!("undecodable acknowledgement: {e}"))),
            Err(e) => Err(ack_failure(e, &args)),
        }
    } else {
        let sent = socket
            .emit_args(&args.event, list)
            .map_err(|e| emit_failure(&e));
        if sent.is_ok() {
            round_trip(&manager, c.connect_timeout).await;
        }
        sent
    };
    // The DISCONNECT goes out behind the event; the connection closes once both are sent.
    close(&manager).await;
    outcome
}

/// A namespace no server is expected to have.
const PROBE_NAMESPACE: &str = "/volley-cli-round-trip";

/// Waits for one round trip after an event without acknowledgement, so that it is read
/// before the DISCONNECT that follows.
///
/// Node's server ignores an event that arrives in the same read as the client's DISCONNECT
/// or close (it dispatches events on a later tick, and only to a socket still connected), so
/// an event written just before leaving can be lost. The round trip is a CONNECT to a
/// namespace that does not exist: every server answers it (a refusal, or an acceptance on a
/// server with a catch-all dynamic namespace), and by then it has dispatched the event. Bounded
/// by the connect timeout; the outcome does not matter.
async fn round_trip(manager: &Manager, timeout: Duration) {
    let probe = manager.socket(PROBE_NAMESPACE).build();
    probe.connect();
    let _ = tokio::time::timeout(timeout, probe.wait_connected()).await;
}

/// The failure for an acknowledgement that did not come.
fn ack_failure(e: AckError, args: &EmitArgs) -> Failure {
    match e {
        AckError::Timeout => Failure::Timeout(format!(
            "no acknowledgement of {:?} within {}",
            args.event,
            humantime::format_duration(args.timeout)
        )),
        AckError::Disconnected => {
            Failure::Disconnected(format!("before the acknowledgement of {:?}", args.event))
        }
        AckError::Emit(e) => emit_failure(&e),
        other => Failure::Other(format!("acknowledgement of {:?}: {other}", args.event)),
    }
}

/// The failure for an event the client refused to send.
fn emit_failure(e: &EmitError) -> Failure {
    Failure::Other(format!("cannot emit: {e}"))
}
