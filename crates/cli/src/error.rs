//! Why a command failed, and the exit code each kind of failure gets.

use std::fmt;

use serde_json::Value;

/// Exit codes, one per kind of failure (documented in the README and in `--help`).
pub(crate) mod code {
    /// Success.
    pub(crate) const OK: u8 = 0;
    /// Anything not listed below (e.g. an event the client refuses to emit).
    pub(crate) const OTHER: u8 = 1;
    /// Bad command line: unknown option, unparsable JSON or duration (clap uses 2 too).
    pub(crate) const USAGE: u8 = 2;
    /// The URL does not parse or has an unsupported scheme.
    pub(crate) const BAD_URL: u8 = 3;
    /// The server could not be reached or is not a Socket.IO server: connection refused,
    /// host unreachable, DNS, TLS, an HTTP error status, a protocol error.
    pub(crate) const UNREACHABLE: u8 = 4;
    /// The namespace refused the connection (a CONNECT_ERROR, e.g. from a middleware).
    pub(crate) const REFUSED: u8 = 5;
    /// A timeout: connecting, an acknowledgement, or bench replies that never came.
    pub(crate) const TIMEOUT: u8 = 6;
    /// The server disconnected the client, or the connection was lost.
    pub(crate) const DISCONNECTED: u8 = 7;
    /// Ctrl-C before the command got going (while connecting), as shells count 128 + SIGINT.
    pub(crate) const INTERRUPTED: u8 = 130;
}

/// A failure that ends the command, with its message and exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A bad argument on the command line (JSON, key=value, …).
    Usage(String),
    /// A bad URL.
    BadUrl(String),
    /// The server could not be reached (or did not speak Engine.IO).
    Unreachable(String),
    /// The namespace refused the connection: the server's message and `data`.
    Refused {
        /// `err.message`.
        message: String,
        /// `err.data`, when the server sent one.
        data: Option<Value>,
    },
    /// Something timed out.
    Timeout(String),
    /// The connection ended.
    Disconnected(String),
    /// Ctrl-C while connecting.
    Interrupted,
    /// Anything else.
    Other(String),
}

impl Failure {
    /// The process exit code of this failure.
    pub(crate) fn code(&self) -> u8 {
        match self {
            Self::Usage(_) => code::USAGE,
            Self::BadUrl(_) => code::BAD_URL,
            Self::Unreachable(_) => code::UNREACHABLE,
            Self::Refused { .. } => code::REFUSED,
            Self::Timeout(_) => code::TIMEOUT,
            Self::Disconnected(_) => code::DISCONNECTED,
            Self::Interrupted => code::INTERRUPTED,
            Self::Other(_) => code::OTHER,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) => write!(f, "{m}"),
            Self::BadUrl(m) => write!(f, "invalid URL: {m}"),
            Self::Unreachable(m) => write!(f, "cannot reach the server: {m}"),
            Self::Refused { message, data } => {
                write!(f, "the server refused the connection: {message}")?;
                match data {
                    Some(data) => write!(f, "\ndata: {data}"),
                    None => Ok(()),
                }
            }
            Self::Timeout(m) => write!(f, "timeout: {m}"),
            Self::Disconnected(m) => write!(f, "disconnected: {m}"),
            Self::Interrupted => f.write_str("interrupted while connecting"),
            Self::Other(m) => f.write_str(m),
        }
    }
}

/// The text `--help` ends with.
pub(crate) const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure
  2  bad command line (options, JSON, durations)
  3  invalid URL
  4  server unreachable (connection refused, unreachable host, DNS, TLS, HTTP error)
  5  the namespace refused the connection (CONNECT_ERROR: message and data on stderr)
  6  timeout (connecting, an acknowledgement, bench replies)
  7  disconnected by the server or connection lost
130  interrupted (Ctrl-C) while connecting";
