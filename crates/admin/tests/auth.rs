//! Basic authentication as the npm package does it: a bcrypt hash (here made by bcryptjs,
//! the package's own library), a `session` id after a login, which later connections
//! present instead of the password.

mod support;

use serde_json::json;
use support::{SECRET_HASH, start, ui};
use volley::SocketIo;
use volley_admin::{AdminError, AdminOptions, Auth, instrument};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bcrypt_login_then_session_id() {
    let (_io, url) = start(AdminOptions::new(Auth::basic("admin", SECRET_HASH))).await;

    for auth in [
        json!({}),
        json!({ "username": "admin", "password": "wrong" }),
        json!({ "username": "root", "password": "secret" }),
        json!({ "username": "admin" }),
        json!({ "username": "admin", "password": 42 }),
        json!({ "sessionId": "0123456789abcdef" }),
    ] {
        let err = ui(&url, auth.clone())
            .await
            .err()
            .unwrap_or_else(|| panic!("{auth} let in"));
        assert_eq!(err.message(), "invalid credentials", "{auth}");
    }

    let mut first = ui(&url, json!({ "username": "admin", "password": "secret" }))
        .await
        .expect("the right password gets in");
    let session = first.next("session").await;
    let session = session[0].as_str().expect("a string").to_owned();
    assert_eq!(session.len(), 16);
    assert!(session.bytes().all(|b| b.is_ascii_hexdigit()));
    let _ = first.next("config").await;

    // The UI reconnects with its session id alone (as after a page reload).
    let mut again = ui(&url, json!({ "sessionId": session }))
        .await
        .expect("a known session gets in");
    let _ = again.next("config").await;
}

#[tokio::test]
async fn a_password_that_is_not_a_bcrypt_hash_is_refused_at_start() {
    let io = SocketIo::builder().build();
    for bad in [
        "secret",
        "",
        "$2a$04$short",
        "$9z$04$pAoZGWFOvg5B4dr95w240ej4kaW7l2h.9/lDvqSYN7WrLXQVPQV26",
    ] {
        assert_eq!(
            instrument(&io, AdminOptions::new(Auth::basic("admin", bad))),
            Err(AdminError::InvalidPasswordHash),
            "{bad:?}"
        );
    }
}

#[test]
fn outside_a_runtime_instrument_says_so() {
    let io = SocketIo::builder().build();
    assert_eq!(
        instrument(&io, AdminOptions::new(Auth::None)),
        Err(AdminError::NoRuntime)
    );
}

#[test]
fn the_hash_stays_out_of_debug_output() {
    let shown = format!("{:?}", AdminOptions::new(Auth::basic("admin", SECRET_HASH)));
    assert!(!shown.contains(SECRET_HASH), "{shown}");
    assert!(shown.contains("admin"), "{shown}");
}
