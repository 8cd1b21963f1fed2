//! `churn`: a soak tool that opens and closes many short Socket.IO sessions against a server,
//! to show that nothing of them stays behind (connections, sockets, memory).
//!
//! Each cycle opens a WebSocket, joins a namespace, emits one event (optionally waiting for
//! its acknowledgement), leaves the namespace and closes the WebSocket, all with raw
//! Engine.IO / Socket.IO frames ([`client`]).

pub mod churn;
pub mod client;

pub use churn::{ChurnOptions, ChurnReport, rss_bytes, run};
pub use client::{Client, ConnectOptions, Target};
