//! Dispatch of incoming events to their handlers, through the connection's copies of its
//! socket list and of each socket's handler table: a few handlers with short names (kept in a
//! flat table), many or long names (a hash table), namespaces with short and long names, and
//! tables that change from inside handlers.

mod common;

use common::*;
use serde_json::json;
use volley::Socket;

/// Registers on `s` a handler per name that emits `got` with the name it was registered under.
fn register(s: &Socket, names: &[&'static str]) {
    for &name in names {
        s.on(name, move |s: Socket| async move {
            let _ = s.emit("got", name);
        });
    }
}

/// Sends each event of `order` and checks that its own handler answered it.
async fn check(c: &mut Client, nsp: &str, order: &[&str]) {
    for &name in order {
        c.emit(nsp, name, json!([]));
        let e = c.expect_next_event(nsp, "got").await;
        assert_eq!(e.args, vec![json!(name)], "in {nsp}, event {name:?}");
    }
}

/// Sends each event of `unknown` (no handler has its name), then `barrier`, whose answer must
/// be the next packet: none of the others found a handler.
async fn check_unknown(c: &mut Client, nsp: &str, unknown: &[&str], barrier: &str) {
    for &name in unknown {
        c.emit(nsp, name, json!([]));
    }
    check(c, nsp, &[barrier]).await;
}

/// Four names: the empty one, two that differ only by a trailing zero byte (sent escaped:
/// `"a\u0000"`), a non-ASCII one (two bytes). A flat table.
const FEW: &[&str] = &["", "a", "a\0", "é"];
/// More names, at the longest length kept inline and one past it, and one well over.
const MANY: &[&str] = &[
    "",
    "a",
    "a\0",
    "ab",
    "ba",
    "é",
    "fifteen bytes!!",
    "sixteen bytes!!!",
    "a name well over sixteen bytes",
];
/// Over the length kept inline.
const LONG_NSP: &str = "/a-namespace-name-longer-than-sixteen-bytes";

#[tokio::test]
async fn events_find_their_handlers_in_small_and_large_tables() {
    let srv = start_default().await;
    for (nsp, names) in [
        ("/", FEW),
        ("/many", MANY),
        // One long name: not kept flat although the handlers are few.
        (LONG_NSP, &["ev", "a name well over sixteen bytes"][..]),
    ] {
        srv.io.of(nsp).on_connection(move |s: Socket| async move {
            register(&s, names);
            let _ = s.emit("ready", &());
        });
    }
    let mut c = srv.client().await;
    for nsp in ["/", "/many", LONG_NSP] {
        c.join(nsp).await;
        c.expect_next_event(nsp, "ready").await;
    }
    for _ in 0..2 {
        // In order, in reverse, and back and forth: an event found further in a flat table
        // moves to its front.
        check(&mut c, "/", FEW).await;
        check(
            &mut c,
            "/",
            &["é", "a\0", "a", "", "a\0", "a\0", "a", "a\0"],
        )
        .await;
        check(&mut c, "/many", MANY).await;
        check(
            &mut c,
            "/many",
            &["a\0", "a", "sixteen bytes!!!", "fifteen bytes!!"],
        )
        .await;
        check(
            &mut c,
            LONG_NSP,
            &["ev", "a name well over sixteen bytes", "ev"],
        )
        .await;
    }
    let unknown = [
        "\0",
        "a\0\0",
        "ab",
        "b",
        "abc",
        "e",
        "e\u{301}",
        "fifteen bytes!?",
        "sixteen bytes!!?",
        "a name well over sixteen bytes",
    ];
    check_unknown(&mut c, "/", &unknown, "a").await;
    check_unknown(
        &mut c,
        "/many",
        &["b", "abc", "sixteen bytes!!?", "a\0\0"],
        "a",
    )
    .await;
    check_unknown(
        &mut c,
        LONG_NSP,
        &["", "e", "a name well over sixteen bytes!"],
        "ev",
    )
    .await;
    // A namespace the client is not in, with a name like one it is in: nothing.
    c.emit("/man", "ab", json!([]));
    c.emit(&LONG_NSP[..LONG_NSP.len() - 1], "ev", json!([]));
    check(&mut c, "/", &["a"]).await;
    check(&mut c, "/many", &["a"]).await;
    check(&mut c, LONG_NSP, &["a name well over sixteen bytes"]).await;
}

#[tokio::test]
async fn a_table_grows_past_the_flat_size_and_shrinks_back_from_handlers() {
    // With `ev`, `grow`, `more` and `shrink`: eight handlers, as many as are kept flat.
    const EXTRA: &[&str] = &["e1", "e2", "e3", "e4"];
    let srv = start_default().await;
    srv.io.of("/").on_connection(|s: Socket| async move {
        register(&s, &["ev"]);
        s.on("grow", |s: Socket| async move {
            register(&s, EXTRA);
            let _ = s.emit("grown", &());
        });
        // A ninth handler: the table is no longer kept flat.
        s.on("more", |s: Socket| async move {
            register(&s, &["e5"]);
            let _ = s.emit("grown", &());
        });
        s.on("shrink", |s: Socket| async move {
            for name in EXTRA.iter().chain(&["e5", "grow", "more"]) {
                s.off(name);
            }
            // Replaced: the next `ev` finds the new handler.
            s.on("ev", |s: Socket| async move {
                let _ = s.emit("got", "ev again");
            });
            let _ = s.emit("shrunk", &());
        });
        let _ = s.emit("ready", &());
    });
    let mut c = srv.client_in("/").await;
    c.expect_next_event("/", "ready").await;
    check(&mut c, "/", &["ev"]).await;
    check_unknown(&mut c, "/", EXTRA, "ev").await;

    c.emit("/", "grow", json!([]));
    c.expect_next_event("/", "grown").await;
    check(&mut c, "/", EXTRA).await;
    check(&mut c, "/", &["ev", "e4", "ev", "e1"]).await;
    check_unknown(&mut c, "/", &["e5", "e6"], "e3").await;

    c.emit("/", "more", json!([]));
    c.expect_next_event("/", "grown").await;
    check(&mut c, "/", &["e5", "ev", "e4", "e5", "e1"]).await;
    check_unknown(&mut c, "/", &["e6", "e"], "e2").await;

    c.emit("/", "shrink", json!([]));
    c.expect_next_event("/", "shrunk").await;
    for name in ["grow", "more", "e1", "e2", "e3", "e4", "e5"] {
        c.emit("/", name, json!([]));
    }
    c.emit("/", "ev", json!([]));
    let e = c.expect_next_event("/", "got").await;
    assert_eq!(e.args, vec![json!("ev again")]);
}

#[tokio::test]
async fn hooks_see_the_event_name_as_text() {
    const NAMES: &[&str] = &["plain", "é😀", "a\"b\\c", "", "a\0"];
    let srv = start_default().await;
    srv.io.of("/").on_connection(|s: Socket| async move {
        s.use_packet(|s: &Socket, name: &str, _: &mut volley::RawArgs| {
            let _ = s.emit("middleware", name);
            Ok(())
        });
        s.on_any(|s: Socket, name: String, _| async move {
            let _ = s.emit("any", &name);
        });
        register(&s, NAMES);
        let _ = s.emit("ready", &());
    });
    let mut c = srv.client_in("/").await;
    c.expect_next_event("/", "ready").await;
    for name in NAMES {
        c.emit("/", name, json!([]));
        for hook in ["middleware", "any", "got"] {
            let e = c.expect_next_event("/", hook).await;
            assert_eq!(e.args, vec![json!(name)], "{hook} {name:?}");
        }
    }
}
