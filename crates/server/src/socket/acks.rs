//! The acknowledgements a socket waits for: ack id → who waits (one emit, or a broadcast's
//! collector).
//!
//! Entries are removed when their ack arrives, times out, or the socket closes. One whose
//! waiter went away without either (an `AckFuture` dropped unawaited, a collector that gave
//! up) is only found by a purge, which visits the whole table. Purging on every insert past a
//! fixed size made an emit cost O(pending): with 20,000 acks in flight on one socket the
//! server managed 7k acks/s against Node's 79k. The table is now purged each time it has
//! doubled since the last purge, so an insert costs O(1) amortized and the table holds at
//! most about twice the entries someone still waits for (plus [`PURGE_FLOOR`]).

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::oneshot;

use crate::RawArgs;
use crate::adapter::AckSink;

/// Who waits for an acknowledgement from this socket.
pub(super) enum AckTarget {
    Single(oneshot::Sender<RawArgs>),
    Broadcast(Arc<dyn AckSink>),
}

impl AckTarget {
    pub(super) fn is_closed(&self) -> bool {
        match self {
            Self::Single(tx) => tx.is_closed(),
            Self::Broadcast(sink) => sink.is_closed(),
        }
    }
}

/// Below this many pending acknowledgements the table is never purged.
const PURGE_FLOOR: usize = 256;

/// A socket's pending acknowledgements.
pub(super) struct Acks {
    pub(super) pending: HashMap<u64, AckTarget>,
    /// The size at which the next insert purges entries nobody waits for.
    purge_at: usize,
    /// Purges so far (what the tests count).
    purges: usize,
}

impl Default for Acks {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            purge_at: PURGE_FLOOR,
            purges: 0,
        }
    }
}

impl Acks {
    pub(super) fn insert(&mut self, id: u64, target: AckTarget) {
        if self.pending.len() >= self.purge_at {
            self.pending.retain(|_, t| !t.is_closed());
            self.purges += 1;
            self.purge_at = PURGE_FLOOR.max(self.pending.len() * 2);
        }
        self.pending.insert(id, target);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(acks: &mut Acks, ids: std::ops::Range<u64>) -> Vec<oneshot::Receiver<RawArgs>> {
        ids.map(|id| {
            let (tx, rx) = oneshot::channel();
            acks.insert(id, AckTarget::Single(tx));
            rx
        })
        .collect()
    }

    #[test]
    fn many_acks_in_flight_are_not_rescanned_on_every_insert() {
        let mut acks = Acks::default();
        let _rx = waiting(&mut acks, 0..20_000);
        assert_eq!(acks.pending.len(), 20_000);
        // 256, 512, ..., 16,384: one purge each time the table doubled (it purged on each of
        // the last 19,744 inserts before).
        assert_eq!(acks.purges, 7);
    }

    #[test]
    fn entries_nobody_waits_for_are_still_purged() {
        let mut acks = Acks::default();
        let live = waiting(&mut acks, 0..100);
        // 50,000 emits whose futures are dropped unawaited: the table stays at its floor.
        for id in 1_000..51_000 {
            drop(waiting(&mut acks, id..id + 1));
            assert!(
                acks.pending.len() <= PURGE_FLOOR,
                "{} entries kept",
                acks.pending.len()
            );
        }
        // The live ones are all kept.
        assert!((0..100).all(|id| acks.pending.contains_key(&id)));
        drop(live);
    }
}
