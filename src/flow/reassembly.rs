//! TCP stream reassembly for one direction, up to the end of the handshake.
//!
//! Segments are mapped to 64-bit stream offsets relative to the first sequence
//! number (ISN + 1 after a SYN, else the first data segment: mid-stream pickup).
//! In-order bytes go straight to the caller without a copy; out-of-order ones
//! wait in a small map capped by segment count and bytes.

use std::collections::{BTreeMap, VecDeque};

/// Caps for one direction's out-of-order queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReassemblyLimits {
    pub max_out_of_order_segments: usize,
    pub max_out_of_order_bytes: usize,
}

impl Default for ReassemblyLimits {
    fn default() -> Self {
        Self {
            max_out_of_order_segments: 64,
            max_out_of_order_bytes: 128 * 1024,
        }
    }
}

/// Reassembly counters (per worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReassemblyCounters {
    pub segments_in_order: u64,
    pub segments_out_of_order: u64,
    pub segments_retransmitted: u64,
    pub segments_out_of_order_dropped: u64,
    pub overlap_conflicts: u64,
}

impl ReassemblyCounters {
    pub fn add(&mut self, other: &Self) {
        self.segments_in_order += other.segments_in_order;
        self.segments_out_of_order += other.segments_out_of_order;
        self.segments_retransmitted += other.segments_retransmitted;
        self.segments_out_of_order_dropped += other.segments_out_of_order_dropped;
        self.overlap_conflicts += other.overlap_conflicts;
    }
}

/// What became of one pushed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Delivered,
    Buffered,
    Duplicate,
    /// The out-of-order queue was full: the stream now has a hole it cannot fill.
    Dropped,
}

#[derive(Debug, Default)]
pub struct Reassembler {
    /// Sequence number of stream offset 0.
    base: Option<u32>,
    /// Next stream offset expected.
    next: u64,
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Last in-order bytes delivered, kept to detect conflicting retransmissions
    /// (a ring: delivering does not move what is kept).
    recent: VecDeque<u8>,
}

/// How many delivered bytes are kept to compare retransmissions against.
const RECENT_BYTES: usize = 2048;

impl Reassembler {
    /// Heap bytes held (buffer capacities plus a B-tree node estimate), for
    /// the memory cap.
    pub fn heap_bytes(&self) -> usize {
        let pending: usize = self.pending.values().map(|v| v.capacity() + 48).sum();
        pending + self.recent.capacity()
    }

    /// A SYN fixes the stream start at ISN + 1.
    pub fn on_syn(&mut self, seq: u32) {
        if self.base.is_none() {
            self.base = Some(seq.wrapping_add(1));
        }
    }

    pub fn has_started(&self) -> bool {
        self.base.is_some()
    }

    /// Stream offset of `seq`, taking wrap-around into account relative to `next`.
    fn offset_of(&self, base: u32, seq: u32) -> i64 {
        let expected = base.wrapping_add(self.next as u32);
        let delta = seq.wrapping_sub(expected) as i32;
        self.next as i64 + i64::from(delta)
    }

    /// Pushes one segment's payload; in-order bytes are passed to `deliver` (possibly
    /// several times when buffered segments become contiguous).
    pub fn push(
        &mut self,
        seq: u32,
        data: &[u8],
        limits: &ReassemblyLimits,
        counters: &mut ReassemblyCounters,
        mut deliver: impl FnMut(&[u8]),
    ) -> PushOutcome {
        if data.is_empty() {
            return PushOutcome::Duplicate;
        }
        let base = *self.base.get_or_insert(seq);
        let offset = self.offset_of(base, seq);
        let end = offset + data.len() as i64;
        let next = self.next as i64;
        if end <= next {
            counters.segments_retransmitted += 1;
            self.compare_with_recent(offset, data, counters);
            return PushOutcome::Duplicate;
        }
        if offset > next {
            return self.buffer(offset as u64, data, limits, counters);
        }
        // Overlaps or starts exactly at `next`: first copy wins, deliver the new tail.
        let skip = (next - offset) as usize;
        if skip > 0 {
            counters.segments_retransmitted += 1;
            self.compare_with_recent(offset, &data[..skip], counters);
        }
        counters.segments_in_order += 1;
        self.deliver(&data[skip..], &mut deliver);
        self.drain_pending(counters, &mut deliver);
        PushOutcome::Delivered
    }

    fn deliver(&mut self, bytes: &[u8], deliver: &mut impl FnMut(&[u8])) {
        self.next += bytes.len() as u64;
        deliver(bytes);
        let kept = &bytes[bytes.len().saturating_sub(RECENT_BYTES)..];
        if self.recent.capacity() == 0 {
            // Sized by the first delivery: a short stream keeps a short ring.
            self.recent
                .reserve_exact(kept.len().max(512).next_power_of_two().min(RECENT_BYTES));
        }
        let overflow = (self.recent.len() + kept.len()).saturating_sub(RECENT_BYTES);
        self.recent.drain(..overflow);
        self.recent.extend(kept);
    }

    /// Counts a conflict when a retransmission differs from what was delivered.
    fn compare_with_recent(&self, offset: i64, data: &[u8], counters: &mut ReassemblyCounters) {
        let recent_start = self.next as i64 - self.recent.len() as i64;
        let from = offset.max(recent_start);
        let to = (offset + data.len() as i64).min(self.next as i64);
        if from >= to {
            return;
        }
        let old = self
            .recent
            .range((from - recent_start) as usize..(to - recent_start) as usize);
        let new = &data[(from - offset) as usize..(to - offset) as usize];
        if !old.eq(new.iter()) {
            counters.overlap_conflicts += 1;
        }
    }

    fn buffer(
        &mut self,
        offset: u64,
        data: &[u8],
        limits: &ReassemblyLimits,
        counters: &mut ReassemblyCounters,
    ) -> PushOutcome {
        // Keep only the bytes no earlier segment covers (first copy wins).
        let end = offset + data.len() as u64;
        let mut pieces: Vec<(u64, u64)> = vec![(offset, end)];
        for (&start, existing) in self.pending.range(..end) {
            let existing_end = start + existing.len() as u64;
            if existing_end <= offset {
                continue;
            }
            let overlap_from = start.max(offset);
            let overlap_to = existing_end.min(end);
            if overlap_from < overlap_to {
                let old = &existing[(overlap_from - start) as usize..(overlap_to - start) as usize];
                let new = &data[(overlap_from - offset) as usize..(overlap_to - offset) as usize];
                if old != new {
                    counters.overlap_conflicts += 1;
                }
            }
            pieces = pieces
                .into_iter()
                .flat_map(|(a, b)| {
                    let mut kept = Vec::with_capacity(2);
                    if a < start.min(b) {
                        kept.push((a, start.min(b)));
                    }
                    if existing_end.max(a) < b {
                        kept.push((existing_end.max(a), b));
                    }
                    kept
                })
                .collect();
        }
        if pieces.is_empty() {
            counters.segments_retransmitted += 1;
            return PushOutcome::Duplicate;
        }
        let new_bytes: u64 = pieces.iter().map(|(a, b)| b - a).sum();
        if self.pending.len() + pieces.len() > limits.max_out_of_order_segments
            || self.pending_bytes + new_bytes as usize > limits.max_out_of_order_bytes
        {
            counters.segments_out_of_order_dropped += 1;
            return PushOutcome::Dropped;
        }
        counters.segments_out_of_order += 1;
        for (a, b) in pieces {
            self.pending.insert(
                a,
                data[(a - offset) as usize..(b - offset) as usize].to_vec(),
            );
        }
        self.pending_bytes += new_bytes as usize;
        PushOutcome::Buffered
    }

    fn drain_pending(
        &mut self,
        counters: &mut ReassemblyCounters,
        deliver: &mut impl FnMut(&[u8]),
    ) {
        while let Some(entry) = self.pending.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let bytes = entry.remove();
            self.pending_bytes -= bytes.len();
            let skip = (self.next - start) as usize;
            if skip >= bytes.len() {
                counters.segments_retransmitted += 1;
                continue;
            }
            self.deliver(&bytes[skip..], deliver);
        }
    }

    /// Buffered bytes (for memory accounting).
    pub fn buffered_bytes(&self) -> usize {
        self.pending_bytes + self.recent.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(
        r: &mut Reassembler,
        seq: u32,
        data: &[u8],
        counters: &mut ReassemblyCounters,
    ) -> (Vec<u8>, PushOutcome) {
        let mut out = Vec::new();
        let outcome = r.push(seq, data, &ReassemblyLimits::default(), counters, |b| {
            out.extend_from_slice(b)
        });
        (out, outcome)
    }

    #[test]
    fn in_order_segments_are_delivered_directly() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(999);
        assert_eq!(collect(&mut r, 1000, b"abc", &mut c).0, b"abc");
        assert_eq!(collect(&mut r, 1003, b"def", &mut c).0, b"def");
        assert_eq!(c.segments_in_order, 2);
    }

    #[test]
    fn out_of_order_segment_waits_for_the_gap() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(0);
        let (out, outcome) = collect(&mut r, 4, b"def", &mut c);
        assert!(out.is_empty());
        assert_eq!(outcome, PushOutcome::Buffered);
        assert_eq!(collect(&mut r, 1, b"abc", &mut c).0, b"abcdef");
        assert_eq!(c.segments_out_of_order, 1);
    }

    #[test]
    fn retransmission_is_counted_and_a_differing_copy_is_a_conflict() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(0);
        collect(&mut r, 1, b"hello", &mut c);
        assert_eq!(
            collect(&mut r, 1, b"hello", &mut c).1,
            PushOutcome::Duplicate
        );
        assert_eq!(c.overlap_conflicts, 0);
        collect(&mut r, 1, b"jello", &mut c);
        assert_eq!(c.segments_retransmitted, 2);
        assert_eq!(c.overlap_conflicts, 1);
    }

    #[test]
    fn overlapping_segment_delivers_only_its_new_tail() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(0);
        collect(&mut r, 1, b"abcd", &mut c);
        assert_eq!(collect(&mut r, 3, b"cdef", &mut c).0, b"ef");
    }

    #[test]
    fn first_buffered_copy_wins_over_a_later_overlapping_one() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(0);
        collect(&mut r, 5, b"EFGH", &mut c);
        collect(&mut r, 3, b"cdXXXXij", &mut c); // overlaps EFGH with different bytes
        assert_eq!(c.overlap_conflicts, 1);
        assert_eq!(collect(&mut r, 1, b"ab", &mut c).0, b"abcdEFGHij");
    }

    #[test]
    fn sequence_numbers_wrap_around() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        r.on_syn(u32::MAX - 2);
        let mut out = collect(&mut r, u32::MAX - 1, b"ab", &mut c).0;
        out.extend(collect(&mut r, 0, b"cd", &mut c).0);
        assert_eq!(out, b"abcd");
    }

    #[test]
    fn mid_stream_pickup_starts_at_the_first_data_segment() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        assert_eq!(collect(&mut r, 77_000, b"xyz", &mut c).0, b"xyz");
    }

    #[test]
    fn full_out_of_order_queue_drops_and_counts() {
        let mut r = Reassembler::default();
        let mut c = ReassemblyCounters::default();
        let limits = ReassemblyLimits {
            max_out_of_order_segments: 2,
            max_out_of_order_bytes: 1024,
        };
        r.on_syn(0);
        for (i, seq) in [10u32, 20, 30].into_iter().enumerate() {
            let outcome = r.push(seq, b"x", &limits, &mut c, |_| {});
            let expected = if i < 2 {
                PushOutcome::Buffered
            } else {
                PushOutcome::Dropped
            };
            assert_eq!(outcome, expected);
        }
        assert_eq!(c.segments_out_of_order_dropped, 1);
    }
}
