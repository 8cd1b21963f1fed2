//! Unit tests of the session handle's shared state.

use super::*;

fn shared() -> Shared {
    let request = RequestInfo::parse(
        http::Method::GET,
        "/engine.io/?EIO=4&transport=polling".parse().unwrap(),
        http::HeaderMap::new(),
        None,
    )
    .unwrap();
    Shared::new(
        Arc::from("sid"),
        &request,
        TransportKind::Polling,
        Limits {
            max_frames: 10,
            max_bytes: 1000,
        },
        Arc::default(),
    )
}

#[test]
fn the_backlog_is_what_was_accepted_and_not_yet_settled() {
    let socket = EngineSocket {
        shared: Arc::new(shared()),
    };
    let backlog = |s: &EngineSocket| (s.queued(), s.queued_bytes());
    socket.send_text("ab").unwrap();
    assert_eq!(backlog(&socket), (1, 3));
    // A ping of the driver's own, then both written.
    socket.shared.add_pending(1, 1);
    assert_eq!(backlog(&socket), (2, 4));
    socket.shared.sub_pending(2, 4);
    assert_eq!(backlog(&socket), (0, 0));
    // max_frames is 10: the eleventh frame in the backlog aborts the session.
    for _ in 0..10 {
        socket.send_text("x").unwrap();
    }
    assert_eq!(backlog(&socket), (10, 20));
    assert!(matches!(socket.send_text("x"), Err(SendError::Full)));
    assert!(socket.shared.lock().abort.is_some());
    // The driver ends the session: nothing is pending any more.
    socket.shared.lock().closed = true;
    socket.shared.clear_pending();
    assert_eq!(backlog(&socket), (0, 0));
    assert!(matches!(socket.send_text("x"), Err(SendError::Closed)));
    assert_eq!(backlog(&socket), (0, 0));
}

#[test]
fn commands_are_bounded_in_order_and_refused_once_closed() {
    let s = shared();
    assert!(s.next_command().is_none());
    for _ in 0..COMMAND_QUEUE {
        assert!(
            s.send_command(Command::Fail(CloseReason::ForcedClose))
                .is_ok()
        );
    }
    assert!(
        s.send_command(Command::Fail(CloseReason::TransportError))
            .is_err(),
        "one more than COMMAND_QUEUE"
    );
    assert!(matches!(
        s.next_command(),
        Some(Ok(Command::Fail(CloseReason::ForcedClose)))
    ));
    s.release();
    let left = s.close_commands();
    assert_eq!(left.len(), COMMAND_QUEUE - 1);
    assert!(s.next_command().is_none(), "nothing after close");
    assert!(
        s.send_command(Command::Fail(CloseReason::ForcedClose))
            .is_err()
    );
}

#[test]
fn a_released_session_gets_its_commands_first_then_the_release() {
    let s = shared();
    assert!(
        s.send_command(Command::Fail(CloseReason::ForcedClose))
            .is_ok()
    );
    s.release();
    assert!(matches!(s.next_command(), Some(Ok(Command::Fail(_)))));
    assert!(matches!(s.next_command(), Some(Err(()))));
    assert!(matches!(s.next_command(), Some(Err(()))), "stays released");
}

/// The flags and the waker sit on the first cache line of the `Arc`'s allocation, after its
/// two reference counts, which the WebSocket's read waker (this `Shared`) moves on every
/// readable event: one line for the socket's wake, not two.
#[cfg(target_pointer_width = "64")]
#[test]
fn the_hot_fields_share_the_reference_counts_line() {
    let end = std::mem::offset_of!(Shared, waker) + std::mem::size_of::<AtomicWaker>();
    assert!(end <= 64 - 16, "Shared's waker ends at byte {end}");
}
