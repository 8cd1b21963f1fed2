//! The README's Quick start is this crate: the code block is `src/main.rs`, the
//! `[dependencies]` block is this crate's, and the program does what the README says.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use volley_client::{Data, Manager, Socket};

/// Only bounds a hang; every wait below is for a signal.
const HANG: Duration = Duration::from_secs(60);

fn readme_section() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("## Quick start")
        .expect("README has a Quick start");
    let rest = &readme[start + 2..];
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    rest[..end].to_string()
}

/// The first fenced block of `lang` in `text`.
fn block(text: &str, lang: &str) -> String {
    let fence = format!("```{lang}\n");
    let start = text
        .find(&fence)
        .unwrap_or_else(|| panic!("no ```{lang} block"))
        + fence.len();
    let len = text[start..].find("```").expect("closed block");
    text[start..start + len].to_string()
}

/// `name = value` lines of a `[dependencies]` table.
fn deps(toml: &str) -> BTreeMap<String, String> {
    let start = toml
        .find("[dependencies]\n")
        .expect("a [dependencies] table")
        + 15;
    toml[start..]
        .lines()
        .take_while(|l| !l.starts_with('['))
        .map(|l| l.split('#').next().unwrap_or("").trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("name = value");
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

#[test]
fn readme_code_is_this_example() {
    let code = block(&readme_section(), "rust");
    assert_eq!(
        code.trim(),
        include_str!("../src/main.rs").trim(),
        "README's Quick start and examples/quickstart/src/main.rs differ: keep them equal"
    );
}

#[test]
fn readme_dependencies_are_this_examples() {
    let mut readme = deps(&block(&readme_section(), "toml"));
    let mut ours = deps(include_str!("../Cargo.toml"));
    let theirs_volley = readme.remove("volley").expect("README names volley");
    let ours_volley = ours.remove("volley").expect("Cargo.toml names volley");
    assert!(theirs_volley.contains("path") && theirs_volley.contains("crates/server"));
    assert!(ours_volley.contains("path") && ours_volley.contains("crates/server"));
    assert_eq!(
        readme, ours,
        "README's [dependencies] and examples/quickstart/Cargo.toml differ"
    );
}

struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
}

impl Running {
    async fn line_starting(&mut self, prefix: &str) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.stdout.read_line(&mut line).await.expect("read stdout");
            assert!(n > 0, "quickstart exited before printing {prefix:?}");
            if let Some(rest) = line.trim_end().strip_prefix(prefix) {
                return rest.to_string();
            }
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn http_get(addr: &str, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn quickstart_runs_as_the_readme_says() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .env("PORT", "0")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start quickstart");
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut app = Running { child, stdout };
    let url = tokio::time::timeout(HANG, app.line_starting("listening on "))
        .await
        .expect("quickstart prints where it listens");
    let addr = url.trim_start_matches("http://").to_string();

    let hello = http_get(&addr, "/api/hello").await;
    assert!(hello.starts_with("HTTP/1.1 200"), "{hello}");
    assert!(
        hello.contains(r#"{"message":"Hello from axum"}"#),
        "{hello}"
    );

    // Two clients: one sends with an ack, the other gets the broadcast.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let receiver = Manager::builder(&url).build().unwrap();
    let _b = tokio::time::timeout(
        HANG,
        receiver
            .socket("/")
            .on("chat message", move |_: Socket, Data(m): Data<String>| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(m);
                }
            })
            .connect(),
    )
    .await
    .unwrap()
    .unwrap();
    let sender = Manager::builder(&url).build().unwrap();
    let a = tokio::time::timeout(HANG, sender.socket("/").connect())
        .await
        .unwrap()
        .unwrap();
    let ack: String = tokio::time::timeout(HANG, a.emit_with_ack("chat message", "hi"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ack, "received");
    assert_eq!(
        tokio::time::timeout(HANG, rx.recv())
            .await
            .unwrap()
            .as_deref(),
        Some("hi")
    );
    let who = tokio::time::timeout(HANG, app.line_starting("connected: "))
        .await
        .unwrap();
    assert!(!who.is_empty());
}
