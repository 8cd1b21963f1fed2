//! Limits on namespaces: how many one connection may join, and dynamic namespaces that
//! clients create by trying names.

mod common;

use common::{Client, start};
use serde_json::json;
use volley::{Socket, SocketIo};

#[tokio::test]
async fn a_connection_joins_at_most_the_configured_number_of_namespaces() {
    let io = SocketIo::builder().max_namespaces_per_connection(2).build();
    for ns in ["/a", "/b", "/c"] {
        io.of(ns).on_connection(|_: Socket| async {});
    }
    let srv = start(io).await;
    let mut c = srv.client().await;
    c.join("/").await;
    c.join("/a").await;
    let refused = c.try_join("/b", None).await.unwrap_err();
    assert_eq!(refused, json!({"message": "Too many namespaces"}));
    // Leaving one makes room again (packets are handled in order); the connection itself
    // was never closed.
    c.leave_ns("/a");
    c.join("/b").await;
}

#[tokio::test]
async fn a_second_connection_has_its_own_namespace_budget() {
    let io = SocketIo::builder().max_namespaces_per_connection(1).build();
    let srv = start(io).await;
    let mut a = srv.client().await;
    let mut b = srv.client().await;
    a.join("/").await;
    b.join("/").await;
}

#[tokio::test]
async fn empty_child_namespaces_are_forgotten_and_come_back_with_their_handlers() {
    let io = SocketIo::builder().build();
    let parent = io.of_pattern("/room-*");
    parent.on_connection(|socket: Socket| async move {
        let _ = socket.emit("welcome", socket.namespace());
    });
    let srv = start(io.clone()).await;

    let mut c = srv.client().await;
    c.join("/room-1").await;
    assert_eq!(
        c.next_event("/room-1", "welcome").await.args,
        vec![json!("/room-1")]
    );
    assert_eq!(parent.fetch_sockets().await.unwrap().len(), 1);
    c.leave_ns("/room-1");

    // Once empty, the child is gone (the join below is handled after the leave)...
    c.join("/").await;
    assert!(!io.namespaces().contains(&"/room-1".to_owned()));
    assert!(parent.fetch_sockets().await.unwrap().is_empty());
    // ...and joining again creates it anew, with the same handlers.
    c.join("/room-1").await;
    assert_eq!(
        c.next_event("/room-1", "welcome").await.args,
        vec![json!("/room-1")]
    );
    let mut other = Client::connect(srv.addr).await;
    other.join("/room-2").await;
    assert_eq!(parent.fetch_sockets().await.unwrap().len(), 2);
}

#[tokio::test]
async fn child_namespaces_can_be_kept_as_node_does_by_default() {
    let io = SocketIo::builder()
        .cleanup_empty_child_namespaces(false)
        .build();
    io.of_pattern("/k-*").on_connection(|_: Socket| async {});
    let srv = start(io.clone()).await;
    let mut c = srv.client().await;
    c.join("/k-1").await;
    c.leave_ns("/k-1");
    c.join("/").await;
    assert!(io.namespaces().contains(&"/k-1".to_owned()));
}

#[tokio::test]
async fn many_tried_names_leave_nothing_behind() {
    let io = SocketIo::builder().build();
    let parent = io.of_pattern("/t-*");
    parent.on_connection(|_: Socket| async {});
    let srv = start(io.clone()).await;
    let mut c = srv.client().await;
    for i in 0..200 {
        let name = format!("/t-{i}");
        c.join(&name).await;
        c.leave_ns(&name);
    }
    // A last join and leave in order: by then every earlier leave was handled.
    c.join("/t-last").await;
    c.leave_ns("/t-last");
    c.join("/").await;
    assert!(parent.fetch_sockets().await.unwrap().is_empty());
    let mut names = io.namespaces();
    names.sort();
    assert_eq!(names, vec!["/".to_owned()]);
}
