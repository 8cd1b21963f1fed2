//! With the `axum` feature, the peer address comes from axum's `ConnectInfo<SocketAddr>` too.
#![cfg(feature = "axum")]

mod common;

use std::net::SocketAddr;

use common::{Harness, call, request};
use http::Method;

#[tokio::test]
async fn the_remote_address_is_read_from_axum_connect_info() {
    let mut h = Harness::default_config();
    let addr: SocketAddr = "203.0.113.7:4567".parse().unwrap();
    let mut req = request(Method::GET, "/engine.io/?EIO=4&transport=polling", "");
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(addr));
    let res = call(&h.engine, req).await;
    assert_eq!(res.status, http::StatusCode::OK);
    let socket = h.next_open().await;
    assert_eq!(socket.request().remote_addr, Some(addr));
}
