//! Capture-side bypass, as Suricata does it: once a worker has finished a
//! flow, the reader stops copying that flow's payloads into batches. The
//! worker still sees every packet (timestamps, duplicates, counters), only
//! without bytes it would not read. On bulk traffic the copy of every
//! payload was a sixth of the reader's time, and the reader is the stage
//! every packet waits for.
//!
//! The worker tells the reader with a [`Notice`] on the batch it returns;
//! the reader applies the notices of a batch when it takes that batch back,
//! which for a file is a fixed number of rounds later (the reader waits for
//! it), so which payloads are withheld is a function of the input alone and
//! 1 and N workers still write the same records.
//!
//! A withheld payload can never be one a worker needs:
//! - only non-empty payloads of packets without SYN, FIN or RST are withheld;
//! - a SYN, FIN or RST ends the reader's entry for its flow (a new
//!   connection on the same ports starts with a SYN, and one whose SYN was
//!   not captured follows the old one's FIN or RST);
//! - a notice about a packet older than the last SYN, FIN or RST seen for a
//!   key in its slot is stale and ignored (the guard table below);
//! - a worker that receives a withheld payload for a flow it no longer keeps
//!   (timed out, evicted) counts it and ignores it: that connection's record
//!   was written when its handshake ended.

use std::collections::HashSet;

use super::key::FlowKey;
use crate::decode::TcpFlags;
use crate::prehashed::Prehashed;

/// A worker finished this flow: the packet at input position `at` carried a
/// payload it did not need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Notice {
    pub key: FlowKey,
    pub at: u64,
}

/// Flows whose payloads the reader stops copying (8192 × a 56-byte key:
/// about 1 MiB with the table's overhead, outside `--memcap`, like the
/// reader's fragment table).
const MAX_BYPASSED: usize = 8192;
/// Slots of the guard table (4096 × 8 bytes).
const GUARD_SLOTS: usize = 4096;

/// The reader's side of the bypass.
#[derive(Debug)]
pub struct BypassFilter {
    flows: HashSet<FlowKey, Prehashed>,
    /// Input position of the last SYN, FIN or RST of any key hashing to the
    /// slot: a notice older than that may be about a connection that has
    /// since ended or been replaced. Positions only grow, so sharing a slot
    /// only ever makes the test more cautious.
    guard: Box<[u64]>,
    /// Payloads withheld, for the stats record.
    pub withheld: u64,
}

impl Default for BypassFilter {
    fn default() -> Self {
        Self {
            flows: HashSet::with_hasher(Prehashed),
            guard: vec![0; GUARD_SLOTS].into_boxed_slice(),
            withheld: 0,
        }
    }
}

impl BypassFilter {
    fn slot(key: &FlowKey) -> usize {
        // Not the keyed hash: which notices a shared slot makes the reader
        // ignore must be the same in every run.
        (key.stable_hash() >> 52) as usize % GUARD_SLOTS
    }

    /// Whether the payload of the TCP packet at input position `at` is
    /// withheld (its length is then passed instead).
    pub fn withhold(&mut self, key: &FlowKey, flags: TcpFlags, at: u64, payload: usize) -> bool {
        if flags.syn() || flags.fin() || flags.rst() {
            self.guard[Self::slot(key)] = at;
            if !self.flows.is_empty() {
                self.flows.remove(key);
            }
            return false;
        }
        if payload == 0 || self.flows.is_empty() || !self.flows.contains(key) {
            return false;
        }
        self.withheld += 1;
        true
    }

    /// Applies a worker's notices (and empties the list for reuse).
    pub fn apply(&mut self, notices: &mut Vec<Notice>) {
        for notice in notices.drain(..) {
            if self.guard[Self::slot(&notice.key)] >= notice.at {
                continue;
            }
            if self.flows.len() >= MAX_BYPASSED {
                // Forgetting costs copies, never correctness.
                self.flows.clear();
            }
            self.flows.insert(notice.key);
        }
    }

    pub fn len(&self) -> usize {
        self.flows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Transport;
    use crate::flow::Endpoint;

    fn key(port: u16) -> FlowKey {
        let a = Endpoint {
            ip: "10.0.0.1".parse().expect("ip"),
            port,
        };
        let b = Endpoint {
            ip: "10.0.0.2".parse().expect("ip"),
            port: 443,
        };
        FlowKey::new(a, b, Transport::Tcp, 0)
    }

    const ACK: TcpFlags = TcpFlags(0x10);
    const SYN: TcpFlags = TcpFlags(0x02);
    const FIN_ACK: TcpFlags = TcpFlags(0x11);

    #[test]
    fn a_noticed_flow_has_its_data_withheld_until_fin() {
        let mut filter = BypassFilter::default();
        let flow = key(40000);
        assert!(!filter.withhold(&flow, SYN, 1, 0));
        filter.apply(&mut vec![Notice { key: flow, at: 10 }]);
        assert!(filter.withhold(&flow, ACK, 11, 1400));
        assert!(!filter.withhold(&flow, ACK, 12, 0), "nothing to withhold");
        assert!(!filter.withhold(&key(40001), ACK, 13, 1400), "another flow");
        assert!(!filter.withhold(&flow, FIN_ACK, 14, 20));
        assert!(!filter.withhold(&flow, ACK, 15, 1400), "gone after FIN");
        assert_eq!(filter.withheld, 1);
    }

    #[test]
    fn a_notice_older_than_a_new_syn_is_ignored() {
        // Port reuse: the old connection's notice arrives after the new SYN;
        // the new connection's ClientHello must still be shipped.
        let mut filter = BypassFilter::default();
        let flow = key(40000);
        assert!(!filter.withhold(&flow, SYN, 50, 0));
        let mut notices = vec![Notice { key: flow, at: 20 }];
        filter.apply(&mut notices);
        assert!(notices.is_empty());
        assert!(!filter.withhold(&flow, ACK, 51, 300));
        // A notice after the SYN is about the new connection.
        filter.apply(&mut vec![Notice { key: flow, at: 60 }]);
        assert!(filter.withhold(&flow, ACK, 61, 300));
    }

    #[test]
    fn the_set_is_bounded() {
        let mut filter = BypassFilter::default();
        for port in 0..(MAX_BYPASSED as u16 + 10) {
            filter.apply(&mut vec![Notice {
                key: key(port),
                at: 1,
            }]);
        }
        assert!(filter.len() <= MAX_BYPASSED);
    }
}
