//! IPv4 and IPv6 fragment reassembly, bounded like the flow table.
//!
//! DTLS and QUIC ride on UDP, and a large ClientHello (post-quantum key shares)
//! or an odd tunnel MTU gets fragmented at the IP layer. The caller hands each
//! fragment's payload (the bytes after the IP header, or after the IPv6
//! Fragment header) to [`FragmentTable::push`]; the whole payload comes back
//! when the last hole closes.
//!
//! Every byte is attacker-controlled, so the table is bounded four ways, each
//! with a counter in [`FragmentCounters`]:
//! - `max_datagrams` entries and `max_bytes` of buffer across them: the oldest
//!   datagram is evicted to make room (`evicted`);
//! - `timeout` in packet time from a datagram's first fragment (`timed_out`);
//! - `max_datagram_len` and `max_fragments_per_datagram` per datagram: the
//!   datagram is abandoned (`too_large`, `too_many_fragments`) and kept as an
//!   empty tombstone until its timeout, so its remaining fragments cost one
//!   lookup (`ignored`) instead of starting a new datagram.
//!
//! Overlaps follow the "first" policy (Suricata's `first`, like our TCP
//! reassembly): bytes already held win, only the holes of a new fragment are
//! stored. Overlapping bytes that differ are counted (`overlaps`) because they
//! are the signature of an evasion attempt; a fragment that adds nothing and
//! agrees with what we hold is a `duplicate`.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::Duration;

use crate::time::PacketTime;

/// Caps for one [`FragmentTable`] (one per worker).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FragmentLimits {
    /// Payload buffer capacity held across all datagrams. Default 4 MiB.
    /// Piece bookkeeping comes on top, bounded by `max_datagrams` ×
    /// `max_fragments_per_datagram` × 24 bytes (1.5 MiB at the defaults, and
    /// only when every datagram is cut into 64 pieces).
    pub max_bytes: usize,
    /// Datagrams tracked at once, tombstones included. Default 1024.
    pub max_datagrams: usize,
    /// Age (packet time since the first fragment) after which a datagram is
    /// dropped. Default 30 s, the IPv6 reassembly timeout of RFC 8200 §4.5
    /// (Linux uses the same for IPv4).
    pub timeout: Duration,
    /// Longest reassembled payload. Default 65535: the IPv4 total length and
    /// the IPv6 payload length are both 16-bit fields.
    pub max_datagram_len: usize,
    /// Stored pieces per datagram. Fragments that arrive in order merge into
    /// one piece; a fragment that fills k separate holes stores k pieces.
    /// Default 64: a 65535-byte datagram at a 1280-byte MTU needs 52.
    pub max_fragments_per_datagram: usize,
}

impl Default for FragmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 4 << 20,
            max_datagrams: 1024,
            timeout: Duration::from_secs(30),
            max_datagram_len: 65_535,
            max_fragments_per_datagram: 64,
        }
    }
}

/// What happened to the fragments offered to a [`FragmentTable`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FragmentCounters {
    /// Fragments offered to `push`.
    pub fragments: u64,
    /// Datagrams completed and returned.
    pub reassembled: u64,
    /// Offset 0 without "more fragments" (RFC 6946 atomic fragments): returned
    /// as a copy, never mixed with buffered fragments of the same ident. The
    /// decode loop need not send them (etherparse reports them unfragmented).
    pub atomic: u64,
    /// Incomplete datagrams dropped by packet-time timeout.
    pub timed_out: u64,
    /// Incomplete datagrams dropped to make room (count or byte cap).
    pub evicted: u64,
    /// Fragments whose overlapping bytes differ from those already held (the first copy wins).
    pub overlaps: u64,
    /// Fragments that added no byte and agreed with what was held.
    pub duplicates: u64,
    /// Datagrams abandoned because they reach past `max_datagram_len`.
    pub too_large: u64,
    /// Datagrams abandoned because they needed more than `max_fragments_per_datagram` pieces.
    pub too_many_fragments: u64,
    /// Fragments that break RFC 791 / RFC 8200 rules: offset not a multiple of
    /// 8, a non-last fragment whose length is not a multiple of 8, or data past
    /// (or a second, different) end of datagram. The last two abandon the datagram.
    pub malformed: u64,
    /// Fragments of an abandoned datagram, dropped at the tombstone.
    pub ignored: u64,
}

impl FragmentCounters {
    pub fn add(&mut self, other: &Self) {
        self.fragments += other.fragments;
        self.reassembled += other.reassembled;
        self.atomic += other.atomic;
        self.timed_out += other.timed_out;
        self.evicted += other.evicted;
        self.overlaps += other.overlaps;
        self.duplicates += other.duplicates;
        self.too_large += other.too_large;
        self.too_many_fragments += other.too_many_fragments;
        self.malformed += other.malformed;
        self.ignored += other.ignored;
    }
}

/// Which fragments belong together (RFC 791 §2.3, RFC 8200 §4.5), plus the
/// caller's encapsulation context so identical inner datagrams seen through
/// different tunnels or VLANs never mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// IPv4 addresses are stored IPv4-mapped; `is_ipv6` keeps them apart from
    /// real IPv6 addresses of the same value.
    source: [u8; 16],
    destination: [u8; 16],
    id: u32,
    protocol: u8,
    is_ipv6: bool,
    context: u64,
}

impl FragmentKey {
    /// `id` is the IPv4 identification or the IPv6 Fragment header's
    /// identification; `protocol` the IPv4 protocol or the next header after
    /// the Fragment header. Mixed address families are keyed as IPv6.
    pub fn new(source: IpAddr, destination: IpAddr, id: u32, protocol: u8, context: u64) -> Self {
        let is_ipv6 = source.is_ipv6() || destination.is_ipv6();
        let octets = |address: IpAddr| match address {
            IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
            IpAddr::V6(v6) => v6.octets(),
        };
        Self {
            source: octets(source),
            destination: octets(destination),
            id,
            protocol,
            is_ipv6,
            context,
        }
    }
}

/// One fragment as the IP header describes it.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Offset in bytes (the header's 13-bit field already multiplied by 8).
    pub offset: usize,
    /// The MF flag (IPv4) or M flag (IPv6).
    pub more_fragments: bool,
    /// The fragment's data, after the IP (and Fragment) header.
    pub payload: &'a [u8],
}

/// Datagrams being reassembled, keyed by [`FragmentKey`].
#[derive(Debug)]
pub struct FragmentTable {
    limits: FragmentLimits,
    /// Keyed hasher seeded per run: attackers choose the keys.
    datagrams: HashMap<FragmentKey, Datagram, ahash::RandomState>,
    /// Creation order, oldest first, for eviction and expiry. Entries whose
    /// datagram is gone (completed, evicted) stay until they reach the front or
    /// a compaction, so the queue is bounded by `compact_at`.
    order: VecDeque<(u64, FragmentKey)>,
    next_serial: u64,
    /// Sum of buffer capacities across datagrams; never above `max_bytes`.
    buffered: usize,
    /// Holes of the fragment being pushed; reused so a push does not allocate for it.
    holes: Vec<(usize, usize)>,
}

#[derive(Debug)]
struct Datagram {
    serial: u64,
    first_seen: PacketTime,
    state: State,
}

#[derive(Debug)]
enum State {
    Collecting(Partial),
    /// Given up on: later fragments are counted and dropped until the timeout.
    Abandoned,
}

#[derive(Debug, Default)]
struct Partial {
    /// Unique bytes in arrival order; `pieces` maps datagram offsets into it.
    store: Vec<u8>,
    /// Sorted by `start`, disjoint.
    pieces: Vec<Piece>,
    /// Known once the last fragment arrived.
    total: Option<usize>,
    /// Bytes held; the datagram is complete when this reaches `total`.
    held: usize,
}

#[derive(Debug, Clone, Copy)]
struct Piece {
    start: usize,
    end: usize,
    /// Position of `start` in `store`.
    at: usize,
}

/// Why a datagram leaves the table, for the counters.
#[derive(Clone, Copy)]
enum Removal {
    Completed,
    TimedOut,
    Evicted,
}

impl FragmentTable {
    pub fn new(limits: FragmentLimits) -> Self {
        Self {
            limits,
            datagrams: HashMap::default(),
            order: VecDeque::new(),
            next_serial: 0,
            buffered: 0,
            holes: Vec::new(),
        }
    }

    /// Datagrams tracked, tombstones included.
    pub fn len(&self) -> usize {
        self.datagrams.len()
    }

    pub fn is_empty(&self) -> bool {
        self.datagrams.is_empty()
    }

    /// Buffer capacity held across all datagrams.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Adds one fragment. Returns the whole payload (transport header onward)
    /// when this fragment closes the last hole; the buffer moves out of the
    /// table without a copy when the fragments arrived in order. Allocation:
    /// one buffer per datagram (grown geometrically), none per duplicate.
    /// Drops timed-out datagrams first, so a caller that pushes often need not sweep.
    pub fn push(
        &mut self,
        key: FragmentKey,
        fragment: Fragment<'_>,
        now: PacketTime,
        counters: &mut FragmentCounters,
    ) -> Option<Vec<u8>> {
        counters.fragments += 1;
        self.sweep(now, counters);
        let Fragment {
            offset,
            more_fragments: more,
            payload,
        } = fragment;

        // A datagram that outlived its timeout behind an out-of-order clock is
        // still in the map; it must not collect fresh fragments.
        if let Some(datagram) = self.datagrams.get(&key) {
            if now.since(datagram.first_seen) > self.limits.timeout {
                self.remove(&key, Removal::TimedOut, counters);
            }
        }
        if let Some(Datagram {
            state: State::Abandoned,
            ..
        }) = self.datagrams.get(&key)
        {
            counters.ignored += 1;
            return None;
        }
        // RFC 791 §3.2 / RFC 8200 §4.5: offsets count 8-byte units and every
        // fragment but the last carries a multiple of 8 bytes.
        if offset % 8 != 0 || (more && payload.len() % 8 != 0) {
            counters.malformed += 1;
            return None;
        }
        if offset == 0 && !more {
            // RFC 6946 §4: an atomic fragment is processed on its own, never
            // merged with buffered fragments that share its identification.
            counters.atomic += 1;
            return Some(payload.to_vec());
        }
        let end = match offset.checked_add(payload.len()) {
            Some(end) if end <= self.limits.max_datagram_len => end,
            _ => {
                counters.too_large += 1;
                self.abandon(key, now, counters);
                return None;
            }
        };

        if !self.datagrams.contains_key(&key) && !self.insert(key, now, counters) {
            return None;
        }
        let Some(Datagram {
            state: State::Collecting(partial),
            ..
        }) = self.datagrams.get(&key)
        else {
            return None;
        };

        // The end of the datagram, once known, never moves and nothing lies past it.
        let held_end = partial.pieces.last().map_or(0, |piece| piece.end);
        let inconsistent = match (partial.total, more) {
            (Some(total), true) => end > total,
            (Some(total), false) => end != total,
            (None, true) => false,
            (None, false) => held_end > end,
        };
        if inconsistent {
            counters.malformed += 1;
            self.abandon(key, now, counters);
            return None;
        }

        let conflict = find_holes(partial, offset, payload, &mut self.holes);
        let adding: usize = self.holes.iter().map(|(start, end)| end - start).sum();
        if conflict {
            counters.overlaps += 1;
        } else if adding == 0 && !payload.is_empty() {
            counters.duplicates += 1;
        }
        if partial.pieces.len() + self.holes.len() > self.limits.max_fragments_per_datagram {
            counters.too_many_fragments += 1;
            self.abandon(key, now, counters);
            return None;
        }

        // Grow geometrically so a datagram of many fragments is not copied once
        // per fragment, but never past the datagram's known (or largest
        // possible) size, and never at the price of an eviction: the byte cap
        // counts capacity, so spare capacity must not push others out.
        let length = partial.store.len() + adding;
        let capacity = partial.store.capacity();
        let ceiling = match (partial.total, more) {
            (Some(total), _) => total,
            (None, false) => end,
            (None, true) => self.limits.max_datagram_len,
        };
        let target = if length <= capacity {
            capacity
        } else {
            let doubled = length.max(capacity.saturating_mul(2).min(ceiling));
            let fits = self.buffered.saturating_add(doubled - capacity) <= self.limits.max_bytes;
            if fits {
                doubled
            } else {
                length
            }
        };
        if !self.make_room(&key, target - capacity, counters) {
            return None;
        }

        let Some(Datagram {
            state: State::Collecting(partial),
            ..
        }) = self.datagrams.get_mut(&key)
        else {
            return None;
        };
        if target > capacity {
            partial
                .store
                .reserve_exact(target.saturating_sub(partial.store.len()));
            self.buffered += partial.store.capacity().saturating_sub(capacity);
        }
        for &(start, stop) in &self.holes {
            let Some(bytes) = payload.get(start - offset..stop - offset) else {
                continue;
            };
            let at = partial.store.len();
            partial.store.extend_from_slice(bytes);
            let index = partial.pieces.partition_point(|piece| piece.start < start);
            match index.checked_sub(1).and_then(|i| partial.pieces.get_mut(i)) {
                // In-order arrival: extend the previous piece, keeping one piece per datagram.
                Some(previous)
                    if previous.end == start
                        && previous.at + (previous.end - previous.start) == at =>
                {
                    previous.end = stop;
                }
                _ => partial.pieces.insert(
                    index,
                    Piece {
                        start,
                        end: stop,
                        at,
                    },
                ),
            }
        }
        partial.held += adding;
        if !more {
            partial.total = Some(end);
        }
        if partial.total != Some(partial.held) {
            return None;
        }
        match self.remove(&key, Removal::Completed, counters) {
            Some(State::Collecting(partial)) => Some(assemble(partial)),
            _ => None,
        }
    }

    /// Drops datagrams older than the timeout; `push` calls it too.
    pub fn sweep(&mut self, now: PacketTime, counters: &mut FragmentCounters) {
        while let Some(&(serial, key)) = self.order.front() {
            match self.datagrams.get(&key) {
                Some(datagram) if datagram.serial == serial => {
                    if now.since(datagram.first_seen) <= self.limits.timeout {
                        break;
                    }
                    self.remove(&key, Removal::TimedOut, counters);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Adds an empty datagram for `key`, evicting the oldest to stay under
    /// `max_datagrams`. False when no datagram can be tracked at all.
    fn insert(
        &mut self,
        key: FragmentKey,
        now: PacketTime,
        counters: &mut FragmentCounters,
    ) -> bool {
        while self.datagrams.len() >= self.limits.max_datagrams {
            if self.evict_oldest(counters).is_none() {
                return false;
            }
        }
        let serial = self.next_serial;
        self.next_serial += 1;
        self.datagrams.insert(
            key,
            Datagram {
                serial,
                first_seen: now,
                state: State::Collecting(Partial::default()),
            },
        );
        self.order.push_back((serial, key));
        // Completed datagrams leave stale queue entries behind; drop them once
        // they outnumber the live ones so the queue stays O(max_datagrams).
        if self.order.len() > self.limits.max_datagrams.saturating_mul(2) + 64 {
            let datagrams = &self.datagrams;
            self.order
                .retain(|(serial, key)| datagrams.get(key).is_some_and(|d| d.serial == *serial));
        }
        true
    }

    /// Frees the buffer of `key` (or creates it) and keeps a tombstone until the timeout.
    fn abandon(&mut self, key: FragmentKey, now: PacketTime, counters: &mut FragmentCounters) {
        if !self.datagrams.contains_key(&key) && !self.insert(key, now, counters) {
            return;
        }
        if let Some(datagram) = self.datagrams.get_mut(&key) {
            if let State::Collecting(partial) =
                std::mem::replace(&mut datagram.state, State::Abandoned)
            {
                self.buffered = self.buffered.saturating_sub(partial.store.capacity());
            }
        }
    }

    /// Evicts the oldest datagrams until `growth` more bytes fit. False when
    /// `key` itself had to go (it was the oldest), and the fragment is dropped.
    fn make_room(
        &mut self,
        key: &FragmentKey,
        growth: usize,
        counters: &mut FragmentCounters,
    ) -> bool {
        while self.buffered.saturating_add(growth) > self.limits.max_bytes {
            match self.evict_oldest(counters) {
                Some(evicted) if evicted != *key => {}
                _ => return false,
            }
        }
        true
    }

    /// Removes the oldest datagram and returns its key; `None` when the table is empty.
    fn evict_oldest(&mut self, counters: &mut FragmentCounters) -> Option<FragmentKey> {
        while let Some((serial, key)) = self.order.pop_front() {
            if self.datagrams.get(&key).is_some_and(|d| d.serial == serial) {
                self.remove(&key, Removal::Evicted, counters);
                return Some(key);
            }
        }
        None
    }

    /// Takes `key` out of the map; its queue entry goes stale. Tombstones
    /// leave silently: their loss was counted when they were abandoned.
    fn remove(
        &mut self,
        key: &FragmentKey,
        why: Removal,
        counters: &mut FragmentCounters,
    ) -> Option<State> {
        let datagram = self.datagrams.remove(key)?;
        if let State::Collecting(partial) = &datagram.state {
            self.buffered = self.buffered.saturating_sub(partial.store.capacity());
            match why {
                Removal::Completed => counters.reassembled += 1,
                Removal::TimedOut => counters.timed_out += 1,
                Removal::Evicted => counters.evicted += 1,
            }
        }
        Some(datagram.state)
    }
}

/// Fills `holes` with the ranges of `[offset, offset + payload.len())` that
/// `partial` does not hold yet, in ascending order. True when an overlapping
/// byte differs from the one held.
fn find_holes(
    partial: &Partial,
    offset: usize,
    payload: &[u8],
    holes: &mut Vec<(usize, usize)>,
) -> bool {
    holes.clear();
    let end = offset + payload.len();
    let mut conflict = false;
    let mut cursor = offset;
    let first = partial.pieces.partition_point(|piece| piece.end <= offset);
    for piece in partial.pieces[first..]
        .iter()
        .take_while(|piece| piece.start < end)
    {
        if piece.start > cursor {
            holes.push((cursor, piece.start));
        }
        let from = offset.max(piece.start);
        let to = end.min(piece.end);
        let held = partial
            .store
            .get(piece.at + (from - piece.start)..piece.at + (to - piece.start));
        let offered = payload.get(from - offset..to - offset);
        conflict |= held != offered;
        cursor = cursor.max(piece.end);
    }
    if cursor < end {
        holes.push((cursor, end));
    }
    conflict
}

/// The reassembled payload. In-order arrival left one piece at the start of
/// the store, which is then the datagram itself.
fn assemble(partial: Partial) -> Vec<u8> {
    let total = partial.held;
    if let [piece] = partial.pieces[..] {
        if piece.start == 0 && piece.at == 0 && piece.end == total {
            let mut store = partial.store;
            store.truncate(total);
            return store;
        }
    }
    let mut datagram = vec![0; total];
    for piece in &partial.pieces {
        let length = piece.end - piece.start;
        if let (Some(target), Some(source)) = (
            datagram.get_mut(piece.start..piece.end),
            partial.store.get(piece.at..piece.at + length),
        ) {
            target.copy_from_slice(source);
        }
    }
    datagram
}

#[cfg(test)]
mod tests;
