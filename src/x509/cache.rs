//! Certificates repeat: an estate serves millions of handshakes with a few
//! thousand certificates. Each distinct DER is parsed, hashed (SHA-256) and
//! summarised once per worker and shared as an `Arc` by every session that
//! presents it. Bounded by entries and bytes; at a bound the cache evicts with
//! the CLOCK rule (a certificate used since the hand last passed is spared once).
//!
//! A lookup does not compute the SHA-256: it hashes the DER with a keyed fast
//! hash (ahash, seeded at random, so an attacker cannot aim certificates at
//! one bucket) and compares the whole DER on a hit. On hs-heavy SHA-256 of
//! every presented certificate was 5 % of all CPU time.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::prehashed::Prehashed;

use super::{summarize, CertificateSummary, X509Error};

/// One certificate as it travelled, hashed and summarised once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    pub der: Box<[u8]>,
    /// SHA-256 of `der`.
    pub sha256: [u8; 32],
    pub summary: Result<CertificateSummary, X509Error>,
}

impl Certificate {
    /// Hashes and summarises `der` (no cache).
    pub fn new(der: &[u8]) -> Self {
        Self {
            der: der.into(),
            sha256: Sha256::digest(der).into(),
            summary: summarize(der),
        }
    }

    /// Heap bytes this certificate holds (DER plus the summary's strings), for
    /// memory accounting; an estimate within a few tens of bytes.
    pub fn heap_bytes(&self) -> usize {
        let summary = self
            .summary
            .as_ref()
            .map_or(0, CertificateSummary::heap_bytes);
        std::mem::size_of::<Self>() + self.der.len() + summary
    }
}

/// Bounds of one worker's cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheLimits {
    pub max_entries: usize,
    pub max_bytes: usize,
}

impl Default for CacheLimits {
    fn default() -> Self {
        Self {
            max_entries: 8192,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Cache counters (per worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CacheCounters {
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
}

impl CacheCounters {
    pub fn add(&mut self, other: &Self) {
        self.hits += other.hits;
        self.misses += other.misses;
        self.evicted += other.evicted;
    }
}

struct Slot {
    certificate: Arc<Certificate>,
    bytes: usize,
    referenced: bool,
}

/// DER → summarised certificate, bounded.
pub struct CertificateCache {
    // Keyed by the DER's keyed hash, already spread: the map does not hash again.
    slots: HashMap<u64, Slot, Prehashed>,
    hand: VecDeque<u64>,
    hasher: ahash::RandomState,
    limits: CacheLimits,
    bytes: usize,
    counters: CacheCounters,
}

impl Default for CertificateCache {
    fn default() -> Self {
        Self::new(CacheLimits::default())
    }
}

impl CertificateCache {
    pub fn new(limits: CacheLimits) -> Self {
        Self {
            slots: HashMap::with_hasher(Prehashed),
            hand: VecDeque::new(),
            hasher: ahash::RandomState::new(),
            limits,
            bytes: 0,
            counters: CacheCounters::default(),
        }
    }

    /// The certificate for `der`, summarised now if it is not cached.
    pub fn get(&mut self, der: &[u8]) -> Arc<Certificate> {
        let key = self.hasher.hash_one(der);
        if let Some(slot) = self.slots.get_mut(&key) {
            // A 64-bit collision of a keyed hash is not expected, but a wrong
            // certificate must never be served: the bytes decide.
            if *slot.certificate.der == *der {
                slot.referenced = true;
                self.counters.hits += 1;
                return Arc::clone(&slot.certificate);
            }
        }
        self.counters.misses += 1;
        let certificate = Arc::new(Certificate::new(der));
        let bytes = certificate.heap_bytes() + 64;
        if self.limits.max_entries == 0 || bytes > self.limits.max_bytes {
            return certificate;
        }
        while self.slots.len() >= self.limits.max_entries
            || self.bytes + bytes > self.limits.max_bytes
        {
            if !self.evict_one() {
                break;
            }
        }
        if self.slots.contains_key(&key) {
            return certificate;
        }
        self.bytes += bytes;
        self.hand.push_back(key);
        self.slots.insert(
            key,
            Slot {
                certificate: Arc::clone(&certificate),
                bytes,
                referenced: false,
            },
        );
        certificate
    }

    fn evict_one(&mut self) -> bool {
        // Each key is spared at most once per pass, so this ends.
        for _ in 0..2 * self.hand.len() + 1 {
            let Some(key) = self.hand.pop_front() else {
                return false;
            };
            let Some(slot) = self.slots.get_mut(&key) else {
                continue;
            };
            if slot.referenced {
                slot.referenced = false;
                self.hand.push_back(key);
                continue;
            }
            if let Some(slot) = self.slots.remove(&key) {
                self.bytes -= slot.bytes;
                self.counters.evicted += 1;
            }
            return true;
        }
        false
    }

    pub fn counters(&self) -> &CacheCounters {
        &self.counters
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Bytes held (certificates plus bookkeeping), for memory accounting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der(name: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        let key = rcgen::KeyPair::generate().expect("key");
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn a_repeated_certificate_is_summarised_once_and_shared() {
        let mut cache = CertificateCache::default();
        let bytes = der("a.internal");
        let first = cache.get(&bytes);
        let second = cache.get(&bytes);
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(cache.counters().misses, 1);
        assert_eq!(cache.counters().hits, 1);
        let summary = first.summary.as_ref().expect("parses");
        assert_eq!(summary.alt_names.dns, vec!["a.internal".to_string()]);
        assert_eq!(summary.sha256, first.sha256);
    }

    #[test]
    fn the_entry_cap_evicts_and_counts() {
        let mut cache = CertificateCache::new(CacheLimits {
            max_entries: 2,
            max_bytes: 1 << 20,
        });
        let certificates: Vec<Vec<u8>> = ["a", "b", "c"].iter().map(|n| der(n)).collect();
        for bytes in &certificates {
            cache.get(bytes);
        }
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.counters().evicted, 1);
        // The oldest went: asking for it again is a miss.
        cache.get(&certificates[0]);
        assert_eq!(cache.counters().misses, 4);
    }

    #[test]
    fn the_byte_cap_holds_and_garbage_is_cached_as_its_error() {
        let mut cache = CertificateCache::new(CacheLimits {
            max_entries: 100,
            max_bytes: 4096,
        });
        for i in 0..50u32 {
            let junk = vec![i as u8; 700];
            let entry = cache.get(&junk);
            assert_eq!(entry.summary, Err(X509Error::Malformed));
            assert!(cache.bytes() <= 4096);
        }
        assert!(cache.counters().evicted > 0);
    }
}
