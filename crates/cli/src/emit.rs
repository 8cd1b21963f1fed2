//! `volley emit`: one event, and its acknowledgement when asked for.

use volley_client::{AckError, EmitError, RawArgs};

use crate::cli::EmitArgs;
use crate::connect::{close, connect, connected_note, manager};
use crate::error::Failure;
use crate::listen::note;
use crate::value::ArgList;

/// Runs `volley emit`.
pub(crate) async fn run(args: EmitArgs) -> Result<(), Failure> {
    let c = &args.common;
    let list = ArgList::parse(args.args.as_deref()).map_err(Failure::Usage)?;
    let manager = manager(c)?;
    let socket = connect(&manager, c, |b| b).await?;
    note(c.quiet, &connected_note(&manager, &socket, c));
    let outcome = if args.ack {
        let reply = socket
            .timeout(args.timeout)
            .emit_args_with_ack::<RawArgs>(&args.event, list)
            .await;
        match reply {
            Ok(raw) => {
                let shown = ArgList::from_raw(&raw)
                    .map_err(|e| Failure::Other(format!("undecodable acknowledgement: {e}")))?;
                println!("{}", shown.to_json());
                Ok(())
            }
            Err(e) => Err(ack_failure(e, &args)),
        }
    } else {
        socket
            .emit_args(&args.event, list)
            .map_err(|e| emit_failure(&e))
    };
    // The DISCONNECT goes out behind the event; the connection closes once both are sent.
    close(&manager).await;
    outcome
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
