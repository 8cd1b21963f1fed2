//! What an adapter tells about itself for monitoring ([`AdapterStats`]), read at scrape time.

/// A snapshot of one namespace's adapter, from [`Adapter::stats`](super::Adapter::stats):
/// its rooms on this server and, for a cluster adapter, the state of its link to the other
/// servers. Counters are totals since the adapter was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdapterStats {
    /// Rooms with at least one socket of this server, leaving out the room each socket has
    /// by its own id. `None` when the adapter does not keep a rooms index.
    pub rooms: Option<usize>,
    /// Whether the link to the other servers is up (for a Redis adapter: connected, and in
    /// Streams mode its stream reader reading). `None` for an adapter without a cluster.
    pub link_up: Option<bool>,
    /// Messages from the other servers received and not yet applied here: how far this
    /// server lags behind the cluster (in Streams mode, stream entries read and waiting).
    pub incoming_backlog: u64,
    /// Messages from the other servers dropped because the backlog was full.
    pub dropped_incoming_total: u64,
    /// Messages to the other servers dropped because the outgoing queue was full.
    pub dropped_outgoing_total: u64,
    /// Times the link was re-established after losing its connection.
    pub reconnects_total: u64,
}

impl AdapterStats {
    /// Stats with only a rooms count: what an adapter without a cluster reports.
    pub fn local(rooms: usize) -> Self {
        Self {
            rooms: Some(rooms),
            ..Self::default()
        }
    }
}
