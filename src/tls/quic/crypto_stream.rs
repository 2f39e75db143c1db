//! CRYPTO stream reassembly of one direction at the Initial level: frames
//! arrive at any offset, in any order, repeated or overlapping; bytes leave in
//! order. Bounded by [`QuicLimits`](super::QuicLimits): at most
//! `max_crypto_bytes` of stream ever accepted, and at most
//! `max_pending_frames` pieces (themselves at most `max_crypto_bytes` in all)
//! waiting for a gap to fill.

use std::collections::BTreeMap;

use super::{QuicCounters, QuicLimits};

#[derive(Debug, Default)]
pub struct CryptoStream {
    /// Stream offset of the next byte to deliver in order.
    next_offset: u64,
    /// In-order bytes not yet taken by the caller.
    ready: Vec<u8>,
    /// Out-of-order pieces by starting offset.
    pending: BTreeMap<u64, Vec<u8>>,
    pending_bytes: usize,
    /// Set once the cap dropped a byte; the stream is then incomplete.
    truncated: bool,
}

impl CryptoStream {
    /// Heap bytes held, for the memory cap.
    pub fn heap_bytes(&self) -> usize {
        let pending: usize = self.pending.values().map(|v| v.capacity() + 48).sum();
        pending + self.ready.capacity()
    }

    /// Accepts a CRYPTO frame's data at `offset`.
    pub fn insert(
        &mut self,
        offset: u64,
        data: &[u8],
        limits: &QuicLimits,
        counters: &mut QuicCounters,
    ) {
        let cap = limits.max_crypto_bytes as u64;
        let end = offset.saturating_add(data.len() as u64);
        // Bytes past the cap are never useful: the TLS parser would refuse them.
        let kept_end = end.min(cap);
        if kept_end < end {
            counters.crypto_bytes_dropped_over_cap += end - kept_end.max(offset);
            self.truncated = true;
        }
        if kept_end <= self.next_offset || kept_end <= offset {
            return; // duplicate, empty, or entirely over the cap
        }
        // offset < kept_end <= cap (a usize), so these conversions are exact.
        let data = &data[..(kept_end - offset) as usize];
        if offset <= self.next_offset {
            let skip = (self.next_offset - offset) as usize;
            self.append(data.get(skip..).unwrap_or_default());
            self.drain_pending();
            return;
        }
        counters.crypto_frames_out_of_order += 1;
        if let Some(existing) = self.pending.get(&offset) {
            if existing.len() >= data.len() {
                return; // first copy wins (same rule as TCP reassembly)
            }
        }
        let replaced = self.pending.get(&offset).map_or(0, Vec::len);
        if self.pending.len() >= limits.max_pending_frames && replaced == 0
            || self.pending_bytes - replaced + data.len() > limits.max_crypto_bytes
        {
            counters.crypto_frames_dropped_over_cap += 1;
            self.truncated = true;
            return;
        }
        self.pending_bytes = self.pending_bytes - replaced + data.len();
        self.pending.insert(offset, data.to_vec());
    }

    fn append(&mut self, bytes: &[u8]) {
        self.ready.extend_from_slice(bytes);
        self.next_offset += bytes.len() as u64;
    }

    fn drain_pending(&mut self) {
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.next_offset {
                break;
            }
            let offset = *entry.key();
            let piece = entry.remove();
            self.pending_bytes -= piece.len();
            let skip = (self.next_offset - offset) as usize;
            if let Some(new) = piece.get(skip..) {
                self.append(new);
            }
        }
    }

    /// Drains the in-order bytes gathered since the last call.
    pub fn take(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.ready)
    }

    /// In-order bytes gathered since the last [`take`](Self::take).
    pub fn ready(&self) -> &[u8] {
        &self.ready
    }

    /// Stream offset reached in order (bytes delivered or ready).
    pub fn contiguous_length(&self) -> u64 {
        self.next_offset
    }

    pub fn pending_frames(&self) -> usize {
        self.pending.len()
    }

    pub fn pending_bytes(&self) -> usize {
        self.pending_bytes
    }

    /// Whether a cap dropped CRYPTO bytes of this direction.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}
