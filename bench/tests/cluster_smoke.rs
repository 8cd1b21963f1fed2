//! `bench/scripts/cluster-95k.sh` at a small size, so the script, `cluster-fanout`,
//! `bench-server --redis` and the Node cluster peer keep working: 2 nodes x 200 clients on a
//! real redis-server, Volley then Node, one repeat. Nothing is asserted about speed; every
//! client must connect, broadcasts must reach all of them, and both peers must report.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

#[test]
fn cluster_script_runs_both_peers_at_a_small_size() {
    volley_test_support::ensure_node_modules();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out =
        std::env::temp_dir().join(format!("volley-cluster-smoke-{}.jsonl", std::process::id()));
    let _ = std::fs::remove_file(&out);
    let run = Command::new("bash")
        .arg(root.join("bench/scripts/cluster-95k.sh"))
        .env("NODES", "2")
        .env("PER_NODE", "200")
        .env("REPEATS", "1")
        .env("WARMUP", "0.5")
        .env("DURATION", "1")
        .env("PIN", "0")
        .env("NO_BUILD", "1")
        .env("BENCH_SERVER", env!("CARGO_BIN_EXE_bench-server"))
        .env("CLUSTER_FANOUT", env!("CARGO_BIN_EXE_cluster-fanout"))
        .env("OUT", &out)
        .output()
        .expect("bash runs bench/scripts/cluster-95k.sh");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "cluster-95k.sh failed ({})\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        run.status
    );
    let lines = std::fs::read_to_string(&out).expect("the script wrote its results");
    let _ = std::fs::remove_file(&out);
    let rows: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON result line"))
        .collect();
    let peers: Vec<&str> = rows.iter().filter_map(|r| r["peer"].as_str()).collect();
    assert_eq!(peers, ["volley", "node"], "one row per peer: {lines}");
    for r in &rows {
        assert!(r.get("error").is_none(), "{r}");
        assert_eq!(r["connected"], 400, "{r}");
        assert_eq!(r["connect_failed"], 0, "{r}");
        // Every client plus the sender got each measured broadcast.
        assert_eq!(r["clients"], 401, "{r}");
        assert!(r["broadcasts"].as_u64().is_some_and(|b| b >= 1), "{r}");
        assert!(
            r["server_rss_kib_connected"]
                .as_u64()
                .is_some_and(|k| k > 0),
            "{r}"
        );
    }
    assert!(
        stdout.contains("| deliveries/s |"),
        "the table is printed:\n{stdout}"
    );
}
