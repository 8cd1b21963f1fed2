//! `churn`: connect/emit/disconnect cycles against a Socket.IO server, over raw WebSocket
//! frames. See `churn --help`.

use std::process::ExitCode;
use std::time::Duration;

use volley_churn::{ChurnOptions, Target, rss_bytes, run};

const HELP: &str = "\
churn: many short Socket.IO sessions against a server, to find leaks.

USAGE: churn [OPTIONS] [URL]

URL                    http://host:port[/path/] (default http://127.0.0.1:3000/socket.io/)
--cycles N             connect/emit/disconnect cycles (default 20000)
--concurrency N        cycles at once (default 50)
--warmup N             cycles run first, before the baseline is taken (default 0)
--namespace NSP        namespace to join (default /)
--event NAME           event emitted with the cycle number (default churn)
--no-ack               do not ask for acknowledgements (default: ask, and check the
                       server acknowledges with the same argument)
--timeout SECS         time any one step may take (default 10)
--server-pid PID       report this process's RSS (Linux) before and after
--settle SECS          wait this long after the run before the last RSS (default 2)
";

fn parse() -> Result<(ChurnOptions, usize, Option<u32>, Duration), String> {
    let mut url = "http://127.0.0.1:3000/socket.io/".to_owned();
    let mut opts = ChurnOptions::new(Target::parse(&url)?);
    let mut warmup = 0;
    let mut pid = None;
    let mut settle = Duration::from_secs(2);
    let mut args = std::env::args().skip(1);
    fn num<T: std::str::FromStr>(flag: &str, v: Option<String>) -> Result<T, String> {
        v.ok_or_else(|| format!("{flag} needs a value"))?
            .parse()
            .map_err(|_| format!("{flag}: not a number"))
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(HELP.to_owned()),
            "--cycles" => opts.cycles = num(&arg, args.next())?,
            "--concurrency" => opts.concurrency = num(&arg, args.next())?,
            "--warmup" => warmup = num(&arg, args.next())?,
            "--namespace" => opts.namespace = args.next().ok_or("--namespace needs a value")?,
            "--event" => opts.event = args.next().ok_or("--event needs a value")?,
            "--no-ack" => opts.ack = false,
            "--timeout" => opts.timeout = Duration::from_secs(num(&arg, args.next())?),
            "--server-pid" => pid = Some(num(&arg, args.next())?),
            "--settle" => settle = Duration::from_secs(num(&arg, args.next())?),
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n\n{HELP}"));
            }
            other => url = other.to_owned(),
        }
    }
    opts.target = Target::parse(&url)?;
    Ok((opts, warmup, pid, settle))
}

fn mib(b: Option<u64>) -> String {
    b.map_or_else(
        || "n/a".into(),
        |b| format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let (opts, warmup, pid, settle) = match parse() {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    println!(
        "churn: {} cycles, {} at a time, against ws://{}{} (namespace {}, ack {})",
        opts.cycles, opts.concurrency, opts.target.addr, opts.target.path, opts.namespace, opts.ack
    );
    if warmup > 0 {
        let report = run(ChurnOptions {
            cycles: warmup,
            ..opts.clone()
        })
        .await;
        println!(
            "warm-up: {} ok, {} failed in {:.2?}",
            report.ok, report.failed, report.elapsed
        );
        tokio::time::sleep(settle).await;
    }
    let before = pid.and_then(|p| rss_bytes(Some(p)));
    if pid.is_some() {
        println!("server RSS before: {}", mib(before));
    }
    let report = run(opts).await;
    println!(
        "run: {} ok, {} failed in {:.2?} ({:.0} cycles/s)",
        report.ok,
        report.failed,
        report.elapsed,
        report.rate()
    );
    for e in &report.errors {
        println!("  error: {e}");
    }
    if let Some(p) = pid {
        let during = rss_bytes(Some(p));
        tokio::time::sleep(settle).await;
        let after = rss_bytes(Some(p));
        println!(
            "server RSS at the end: {}, {settle:?} later: {}",
            mib(during),
            mib(after)
        );
        if let (Some(b), Some(a)) = (before, after) {
            println!(
                "server RSS change: {:+.1}%",
                (a as f64 - b as f64) * 100.0 / b as f64
            );
        }
    }
    if report.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
