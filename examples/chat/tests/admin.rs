//! The chat's admin UI namespace: a login with the password behind the bcrypt hash (here
//! bcryptjs's hash of "secret", as `ADMIN_PASSWORD_HASH` would hold), and CORS letting the
//! UI's origin in with credentials.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use volley_example_chat::{admin, router, socket_io_for};

const HASH: &str = "$2a$04$pAoZGWFOvg5B4dr95w240ej4kaW7l2h.9/lDvqSYN7WrLXQVPQV26";
const UI: &str = "http://127.0.0.1:8080";
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_ui_logs_in_to_the_chat() {
    let io = socket_io_for(None, &[UI]);
    admin(&io, "admin", HASH).expect("a bcrypt hash");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(&io, Default::default());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let url = format!("http://{addr}");

    let connect = |auth: Value| {
        let url = url.clone();
        async move {
            volley_client::Manager::builder(&url)
                .reconnection(false)
                .build()
                .unwrap()
                .socket("/admin")
                .auth(auth)
                .connect()
                .await
        }
    };
    let refused = connect(json!({ "username": "admin", "password": "nope" })).await;
    assert_eq!(refused.unwrap_err().message(), "invalid credentials");
    let ui = connect(json!({ "username": "admin", "password": "secret" }))
        .await
        .expect("the right password");
    assert!(ui.connected());

    // The UI's page comes from another origin, with credentials.
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: {addr}\r\nOrigin: {UI}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(WAIT, tcp.read_to_string(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    let answer = answer.to_ascii_lowercase();
    assert!(
        answer.contains(&format!("access-control-allow-origin: {UI}")),
        "{answer}"
    );
    assert!(
        answer.contains("access-control-allow-credentials: true"),
        "{answer}"
    );
}
