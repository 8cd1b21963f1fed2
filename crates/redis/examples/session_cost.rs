//! What the live session snapshots cost in Redis: `N` sockets connect to a Volley server
//! (streams mode, recovery window `W` seconds), each joins a room, then they idle for two
//! windows; Redis's own command counters (`INFO commandstats`, after `CONFIG RESETSTAT`) are
//! read after each phase. Prints the commands per socket, and per socket per minute with the
//! default 2-minute window (refreshes every quarter window: 2 a minute).
//!
//! ```text
//! redis-server --port 6399 --save '' &
//! cargo run --release -p volley-redis --example session_cost -- redis://127.0.0.1:6399 1000 8
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as Ws;
use volley::{ConnectionStateRecovery, Data, Socket, SocketIo};
use volley_redis::{RedisAdapterConfig, RedisCluster};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// `cmdstat_<name>` → calls, for the commands the snapshots use.
async fn counts(
    con: &mut redis::aio::MultiplexedConnection,
) -> Result<BTreeMap<String, u64>, Error> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(con)
        .await?;
    let mut out = BTreeMap::new();
    for line in info.lines() {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let Some(name) = name.strip_prefix("cmdstat_") else {
            continue;
        };
        if !["set", "get", "eval", "pexpire", "del"].contains(&name) {
            continue;
        }
        let calls = rest
            .split(',')
            .find_map(|kv| kv.strip_prefix("calls="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.insert(name.to_owned(), calls);
    }
    Ok(out)
}

fn report(phase: &str, before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>, n: u64) {
    let mut line = format!("{phase}:");
    for (name, calls) in after {
        let d = calls - before.get(name).copied().unwrap_or(0);
        line.push_str(&format!(" {name}={d} ({:.3}/socket)", d as f64 / n as f64));
    }
    println!("{line}");
}

/// One raw client: connects to "/", answers pings, sends what it is given.
async fn client(port: u16, join: tokio::sync::watch::Receiver<bool>) -> Result<(), Error> {
    let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
    let (ws, _) = tokio_tungstenite::connect_async(url).await?;
    let (mut sink, mut stream) = ws.split();
    stream.next().await.ok_or("closed")??;
    sink.send(Ws::text("40")).await?;
    let mut join = join;
    let mut joined = false;
    loop {
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Ws::Text(t))) if t.as_str() == "2" => sink.send(Ws::text("3")).await?,
                Some(Ok(_)) => {}
                _ => return Ok(()),
            },
            r = join.changed(), if !joined => {
                r?;
                joined = true;
                sink.send(Ws::text(r#"42["join","room"]"#)).await?;
            }
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into());
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(1000);
    let window = Duration::from_secs(args.next().and_then(|a| a.parse().ok()).unwrap_or(8));

    let mut con = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let cluster = RedisCluster::connect(&url, RedisAdapterConfig::streams()).await?;
    let io = SocketIo::builder()
        .adapter(cluster.factory())
        .connection_state_recovery(
            ConnectionStateRecovery::default().max_disconnection_duration(window),
        )
        .build();
    io.of("/").on_connection(|s: Socket| async move {
        s.on("join", |s: Socket, Data(room): Data<String>| async move {
            s.join(room);
        });
    });
    cluster.ready(Duration::from_secs(10)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(volley::serve(listener, io.service()));
    let settle = Duration::from_secs(1);

    redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .exec_async(&mut con)
        .await?;
    let start = counts(&mut con).await?;
    let (join_tx, join_rx) = tokio::sync::watch::channel(false);
    for _ in 0..n {
        tokio::spawn(client(port, join_rx.clone()));
    }
    while io.of("/").sockets().len() < n as usize {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(settle).await;
    let connected = counts(&mut con).await?;
    report("connect", &start, &connected, n);

    join_tx.send(true)?;
    tokio::time::sleep(settle).await;
    let joined = counts(&mut con).await?;
    report("join one room", &connected, &joined, n);

    tokio::time::sleep(window * 2).await;
    let idle = counts(&mut con).await?;
    report(
        &format!("idle {:?} (8 refreshes)", window * 2),
        &joined,
        &idle,
        n,
    );
    let per_min = |name: &str| {
        let d = idle.get(name).copied().unwrap_or(0) - joined.get(name).copied().unwrap_or(0);
        // 8 refreshes measured; the default 2-minute window refreshes twice a minute.
        d as f64 / n as f64 / 8.0 * 2.0
    };
    println!(
        "idle, per socket per minute with the default window: eval={:.4} get={:.2} set={:.2}",
        per_min("eval"),
        per_min("get"),
        per_min("set")
    );
    cluster.close();
    Ok(())
}
