//! The command line: subcommands and options (clap derive).

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::error::EXIT_CODES_HELP;

/// A command-line Socket.IO client: listen to events, emit them, measure round trips.
///
/// Works with any Socket.IO v5 server (Node's socket.io 4.x, Volley, …) over HTTP
/// long-polling and WebSocket. Binary data is shown and written as {"$binary":"<base64>"}.
#[derive(Debug, Parser)]
#[command(name = "volley", version, after_help = EXIT_CODES_HELP)]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print incoming events, one JSON line each ({"event":…,"args":[…]}), until Ctrl-C.
    #[command(after_help = EXIT_CODES_HELP)]
    Listen(ListenArgs),
    /// Emit one event; with --ack, wait for the acknowledgement and print its arguments.
    #[command(after_help = EXIT_CODES_HELP)]
    Emit(EmitArgs),
    /// Echo round trips from many clients at a total rate; percentiles at the end.
    #[command(after_help = EXIT_CODES_HELP)]
    Bench(BenchArgs),
}

/// The transports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Transport {
    /// WebSocket only.
    Websocket,
    /// HTTP long-polling only (no upgrade).
    Polling,
}

/// Options every subcommand takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// The server, e.g. http://localhost:3000 (http, https, ws or wss).
    pub(crate) url: String,
    /// The namespace.
    #[arg(long = "ns", default_value = "/", value_name = "NAMESPACE")]
    pub(crate) ns: String,
    /// Only this transport (default: long-polling, then an upgrade to WebSocket, as the
    /// official client).
    #[arg(long, value_enum)]
    pub(crate) transport: Option<Transport>,
    /// The `auth` object sent with the CONNECT packet (JSON).
    #[arg(long, value_name = "JSON")]
    pub(crate) auth: Option<String>,
    /// A query parameter added to every request (repeatable).
    #[arg(long = "query", value_name = "KEY=VALUE")]
    pub(crate) query: Vec<String>,
    /// An HTTP header added to every request (repeatable).
    #[arg(long = "header", value_name = "NAME:VALUE")]
    pub(crate) header: Vec<String>,
    /// The server's path.
    #[arg(long, default_value = "/socket.io/")]
    pub(crate) path: String,
    /// Use the MessagePack parser (socket.io-msgpack-parser) instead of the default JSON one;
    /// the server must use it too.
    #[arg(long)]
    pub(crate) msgpack: bool,
    /// How long connecting may take (e.g. 500ms, 10s).
    #[arg(long, default_value = "20s", value_parser = duration, value_name = "DURATION")]
    pub(crate) connect_timeout: Duration,
    /// Print nothing on stderr but errors.
    #[arg(long, short)]
    pub(crate) quiet: bool,
}

/// `volley listen`.
#[derive(Debug, Args)]
pub(crate) struct ListenArgs {
    /// Connection options.
    #[command(flatten)]
    pub(crate) common: Common,
    /// Only print this event (repeatable; default: every event).
    #[arg(long = "event", short = 'e', value_name = "EVENT")]
    pub(crate) events: Vec<String>,
}

/// `volley emit`.
#[derive(Debug, Args)]
pub(crate) struct EmitArgs {
    /// Connection options.
    #[command(flatten)]
    pub(crate) common: Common,
    /// The event name.
    pub(crate) event: String,
    /// The arguments as JSON: a value is one argument, an array is several
    /// (`'[1,"a"]'` sends 1 and "a"; `'[[1,2]]'` sends one array). None: no argument.
    #[arg(value_name = "JSON", allow_negative_numbers = true)]
    pub(crate) args: Option<String>,
    /// Ask for an acknowledgement and print its arguments as a JSON array.
    #[arg(long)]
    pub(crate) ack: bool,
    /// How long to wait for the acknowledgement.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub(crate) timeout: Duration,
}

/// `volley bench`.
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Connection options.
    #[command(flatten)]
    pub(crate) common: Common,
    /// How many clients (one connection each).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub(crate) clients: u32,
    /// Events per second, all clients together.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) rate: u32,
    /// How long to send.
    #[arg(long, default_value = "10s", value_parser = duration, value_name = "DURATION")]
    pub(crate) duration: Duration,
    /// The event to send: the server emits it back to the sender with the same data, as
    /// `socket.on("echo", (d) => socket.emit("echo", d))` [default: echo, or ack with --ack]
    #[arg(long)]
    pub(crate) event: Option<String>,
    /// Measure acknowledgements instead: the server acknowledges the event with its data
    /// (`socket.on("ack", (d, cb) => cb(d))`).
    #[arg(long)]
    pub(crate) ack: bool,
    /// The size of each event's data, in bytes (a string holding the send time).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(24..=1_000_000))]
    pub(crate) size: u32,
    /// How long to wait for the last replies once sending stopped.
    #[arg(long, default_value = "5s", value_parser = duration, value_name = "DURATION")]
    pub(crate) timeout: Duration,
    /// Print the results as one JSON object instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

impl BenchArgs {
    /// The event to send: `--event`, or `echo` (`ack` with `--ack`).
    pub(crate) fn event(&self) -> &str {
        match &self.event {
            Some(e) => e,
            None if self.ack => "ack",
            None => "echo",
        }
    }
}

/// Parses a duration: `500ms`, `10s`, `2m`, `1h 30m` (humantime), or a bare number of
/// seconds.
fn duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|e| e.to_string());
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (e.g. 500ms, 10s, 2m)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert!(duration("-1").is_err());
        assert!(duration("soon").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
