//! The global memory cap (`--memcap`): one byte budget shared by every
//! worker, so what an attacker on the SPAN port can make tlstap hold is
//! bounded in bytes, not in entries per worker.
//!
//! What is charged: flow-table entries, reassembly and handshake buffers,
//! QUIC/DTLS trackers, the workers' certificate and verdict caches, and
//! finished records waiting for the output stage. Each worker charges
//! through its own [`MemoryAccount`], which takes credit from the shared
//! [`MemoryBudget`] in chunks, so the shared atomic is touched rarely, never
//! per packet. Fixed buffers (packet batches, the reader's fragment table,
//! histograms, the program itself) are not charged; their size is documented
//! as the fixed overhead.
//!
//! Near the cap the budget is in emergency mode (entered at
//! [`EMERGENCY_ENTER`] of the cap, left below [`EMERGENCY_LEAVE`]): the
//! flow layer times idle and half-open flows out sooner and drops stalled
//! handshakes first. At the cap, charges that may fail fail: new flows are
//! refused rather than older finished work dropped.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Emergency mode starts at this fraction of the cap (per mille)…
pub const EMERGENCY_ENTER: usize = 850;
/// …and ends below this one.
pub const EMERGENCY_LEAVE: usize = 700;

/// Default cap: 256 MiB.
pub const DEFAULT_MEMCAP: usize = 256 * 1024 * 1024;

/// Credit a worker takes from the budget at a time, and the most it keeps unused.
const CHUNK: usize = 64 * 1024;
const MAX_IDLE_CREDIT: usize = 4 * CHUNK;

/// Parses a byte size as people write it: `268435456`, `256M`, `256MiB`,
/// `1G`, `64 MB`. Binary multiples: `M` and `MB` both mean MiB, as in
/// Suricata's memcap settings. At least 1 MiB.
pub fn parse_bytes(text: &str) -> Result<usize, String> {
    let bytes = parse_size::Config::new()
        .with_binary()
        .parse_size(text.trim())
        .map_err(|error| format!("{text:?} is not a byte size ({error}); try 256M or 1G"))?;
    let bytes = usize::try_from(bytes).map_err(|_| format!("{text:?} is too large"))?;
    if bytes < 1024 * 1024 {
        return Err(format!("{text:?} is below the smallest memcap, 1M"));
    }
    Ok(bytes)
}

/// The shared byte budget.
#[derive(Debug)]
pub struct MemoryBudget {
    cap: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    emergency: AtomicBool,
    emergencies: AtomicU64,
}

impl MemoryBudget {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            cap,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            emergency: AtomicBool::new(false),
            emergencies: AtomicU64::new(0),
        })
    }

    /// A budget that never refuses (tests and tools that need no cap).
    pub fn unlimited() -> Arc<Self> {
        Self::new(usize::MAX / 2)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Bytes charged now (worker credit included).
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most ever charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn is_emergency(&self) -> bool {
        self.emergency.load(Ordering::Relaxed)
    }

    /// Times emergency mode was entered.
    pub fn emergencies(&self) -> u64 {
        self.emergencies.load(Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit under the cap.
    pub fn try_take(&self, bytes: usize) -> bool {
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            let Some(after) = used.checked_add(bytes).filter(|&after| after <= self.cap) else {
                return false;
            };
            match self
                .used
                .compare_exchange_weak(used, after, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => {
                    self.after_change(after);
                    return true;
                }
                Err(now) => used = now,
            }
        }
    }

    /// Takes `bytes` whatever the cap says: for memory already in use that
    /// must not be lost (finished records, bounded caches).
    pub fn force_take(&self, bytes: usize) {
        let after = self.used.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.after_change(after);
    }

    pub fn give_back(&self, bytes: usize) {
        let before = self.used.fetch_sub(bytes, Ordering::Relaxed);
        self.after_change(before.saturating_sub(bytes));
    }

    fn after_change(&self, used: usize) {
        self.peak.fetch_max(used, Ordering::Relaxed);
        let per_mille = used.saturating_mul(1000) / self.cap.max(1);
        let emergency = self.emergency.load(Ordering::Relaxed);
        if !emergency && per_mille >= EMERGENCY_ENTER {
            if !self.emergency.swap(true, Ordering::Relaxed) {
                self.emergencies.fetch_add(1, Ordering::Relaxed);
            }
        } else if emergency && per_mille < EMERGENCY_LEAVE {
            self.emergency.store(false, Ordering::Relaxed);
        }
    }
}

/// One thread's charges against the shared budget.
#[derive(Debug)]
pub struct MemoryAccount {
    budget: Arc<MemoryBudget>,
    /// Taken from the budget and not yet charged.
    credit: usize,
    charged: usize,
    /// The most this account may charge with `try_charge`. Flows are sharded
    /// by hash, so a flood spreads evenly; a share keeps one worker from
    /// holding the room another needs, where only the other could shed.
    share: usize,
}

impl MemoryAccount {
    pub fn new(budget: Arc<MemoryBudget>) -> Self {
        Self::with_share(budget, usize::MAX)
    }

    /// An account of one of `workers` threads: an equal share of the cap.
    pub fn for_worker(budget: Arc<MemoryBudget>, workers: usize) -> Self {
        let share = budget.cap() / workers.max(1);
        Self::with_share(budget, share)
    }

    fn with_share(budget: Arc<MemoryBudget>, share: usize) -> Self {
        Self {
            budget,
            credit: 0,
            charged: 0,
            share,
        }
    }

    pub fn budget(&self) -> &MemoryBudget {
        &self.budget
    }

    /// Bytes this account has charged.
    pub fn charged(&self) -> usize {
        self.charged
    }

    /// Charges `bytes` if the budget has room; false (nothing charged) at the cap.
    pub fn try_charge(&mut self, bytes: usize) -> bool {
        if self.charged.saturating_add(bytes) > self.share {
            return false;
        }
        if self.share != usize::MAX {
            // A worker's share is its own: records queued for output (forced
            // charges elsewhere) never take it, so what a worker admits does
            // not depend on how far behind the output thread is.
            self.force_charge(bytes);
            return true;
        }
        if self.credit < bytes {
            let want = (bytes - self.credit).max(CHUNK);
            if !self.budget.try_take(want) {
                // Near the cap, take exactly what is missing.
                let exact = bytes - self.credit;
                if exact == want || !self.budget.try_take(exact) {
                    return false;
                }
                self.credit += exact;
            } else {
                self.credit += want;
            }
        }
        self.credit -= bytes;
        self.charged += bytes;
        true
    }

    /// Charges `bytes` even past the cap (see [`MemoryBudget::force_take`]).
    pub fn force_charge(&mut self, bytes: usize) {
        if self.credit >= bytes {
            self.credit -= bytes;
        } else {
            self.budget.force_take(bytes - self.credit);
            self.credit = 0;
        }
        self.charged += bytes;
    }

    pub fn uncharge(&mut self, bytes: usize) {
        let bytes = bytes.min(self.charged);
        self.charged -= bytes;
        self.credit += bytes;
        if self.credit > MAX_IDLE_CREDIT {
            let keep = CHUNK;
            self.budget.give_back(self.credit - keep);
            self.credit = keep;
        }
    }

    /// Moves the charge for one item from `old` to `new` bytes; false when
    /// the growth does not fit (then nothing changes).
    pub fn try_recharge(&mut self, old: usize, new: usize) -> bool {
        if new > old {
            self.try_charge(new - old)
        } else {
            self.uncharge(old - new);
            true
        }
    }
}

impl Drop for MemoryAccount {
    fn drop(&mut self) {
        self.budget.give_back(self.credit + self.charged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_sizes_parse_in_binary_units() {
        assert_eq!(parse_bytes("64M"), Ok(64 << 20));
        assert_eq!(parse_bytes("256MiB"), Ok(256 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("2097152"), Ok(2 << 20));
        assert!(parse_bytes("lots").is_err());
        assert!(parse_bytes("12K").unwrap_err().contains("smallest"));
    }

    #[test]
    fn charges_stop_at_the_cap_and_come_back() {
        let budget = MemoryBudget::new(1_000_000);
        let mut account = MemoryAccount::new(Arc::clone(&budget));
        let mut charged = 0;
        while account.try_charge(10_000) {
            charged += 10_000;
        }
        assert_eq!(charged, 1_000_000);
        assert!(budget.used() <= budget.cap());
        assert!(budget.is_emergency());
        assert_eq!(budget.emergencies(), 1);
        account.uncharge(charged);
        assert!(budget.used() <= MAX_IDLE_CREDIT);
        assert!(!budget.is_emergency());
        drop(account);
        assert_eq!(budget.used(), 0);
        assert_eq!(budget.peak(), 1_000_000);
    }

    #[test]
    fn two_accounts_share_one_cap() {
        let budget = MemoryBudget::new(200_000);
        let mut a = MemoryAccount::new(Arc::clone(&budget));
        let mut b = MemoryAccount::new(Arc::clone(&budget));
        assert!(a.try_charge(150_000));
        assert!(!b.try_charge(60_000));
        assert!(b.try_charge(40_000));
        assert!(budget.used() <= 200_000);
    }

    #[test]
    fn a_worker_charges_at_most_its_share() {
        let budget = MemoryBudget::new(1 << 20);
        let mut a = MemoryAccount::for_worker(Arc::clone(&budget), 2);
        let mut b = MemoryAccount::for_worker(Arc::clone(&budget), 2);
        assert!(a.try_charge(500_000));
        assert!(!a.try_charge(100_000), "past half the cap");
        assert!(b.try_charge(500_000), "the other half stays free");
        a.force_charge(100_000);
        assert_eq!(a.charged(), 600_000);
    }

    #[test]
    fn forced_charges_pass_the_cap_and_are_counted() {
        let budget = MemoryBudget::new(100_000);
        let mut account = MemoryAccount::new(Arc::clone(&budget));
        account.force_charge(150_000);
        assert!(budget.used() >= 150_000);
        assert!(!account.try_charge(1));
        account.uncharge(150_000);
        assert!(account.try_charge(1));
    }
}
