use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const SECOND: i64 = 1_000_000_000;

fn key(id: u32) -> FragmentKey {
    FragmentKey::new(
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        id,
        17,
        0,
    )
}

/// A payload whose every byte depends on its position, so a misplaced piece shows.
fn datagram(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i / 251) as u8)
        .collect()
}

/// Cuts `data` into fragments of `size` bytes (a multiple of 8), as a router would.
fn cut(data: &[u8], size: usize) -> Vec<Fragment<'_>> {
    let mut fragments = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + size).min(data.len());
        fragments.push(Fragment {
            offset,
            more_fragments: end < data.len(),
            payload: &data[offset..end],
        });
        offset = end;
    }
    fragments
}

/// `assert_eq!` on whole datagrams would print kilobytes; report length and first difference.
#[track_caller]
fn assert_datagram(got: &Option<Vec<u8>>, want: &[u8]) {
    let got = got.as_ref().expect("datagram complete");
    let first_difference = got.iter().zip(want).position(|(a, b)| a != b);
    assert!(
        got.len() == want.len() && first_difference.is_none(),
        "got {} bytes, want {}, first difference at {first_difference:?}",
        got.len(),
        want.len()
    );
}

fn at(seconds: i64) -> PacketTime {
    PacketTime::from_nanos(seconds * SECOND)
}

/// Pushes all fragments of one key; returns what each push returned (only the last may be `Some`).
fn push_all(
    table: &mut FragmentTable,
    key: FragmentKey,
    fragments: &[Fragment<'_>],
    counters: &mut FragmentCounters,
) -> Vec<Option<Vec<u8>>> {
    fragments
        .iter()
        .map(|fragment| table.push(key, *fragment, at(1), counters))
        .collect()
}

#[test]
fn in_order_fragments_reassemble_without_copy() {
    let data = datagram(4000);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let results = push_all(&mut table, key(1), &cut(&data, 1480), &mut counters);
    assert_eq!(results.len(), 3);
    assert_eq!(results[0], None);
    assert_eq!(results[1], None);
    assert_datagram(&results[2], &data);
    assert_eq!(counters.fragments, 3);
    assert_eq!(counters.reassembled, 1);
    assert_eq!(
        counters.duplicates + counters.overlaps + counters.malformed,
        0
    );
    assert_eq!(table.len(), 0);
    assert_eq!(table.buffered_bytes(), 0);
}

#[test]
fn reverse_order_fragments_reassemble() {
    let data = datagram(10_000);
    let mut fragments = cut(&data, 1000);
    fragments.reverse();
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let results = push_all(&mut table, key(1), &fragments, &mut counters);
    assert!(results[..9].iter().all(Option::is_none));
    assert_datagram(&results[9], &data);
    assert_eq!(counters.reassembled, 1);
    assert_eq!(table.buffered_bytes(), 0);
}

#[test]
fn every_order_of_five_fragments_reassembles() {
    let data = datagram(4 * 16 + 5);
    let fragments = cut(&data, 16);
    assert_eq!(fragments.len(), 5);
    let mut orders = 0;
    // All 120 permutations via Heap's algorithm.
    let mut order: Vec<usize> = (0..5).collect();
    let mut c = [0usize; 5];
    let mut check = |order: &[usize]| {
        let mut table = FragmentTable::new(FragmentLimits::default());
        let mut counters = FragmentCounters::default();
        let shuffled: Vec<Fragment<'_>> = order.iter().map(|&i| fragments[i]).collect();
        let results = push_all(&mut table, key(9), &shuffled, &mut counters);
        assert!(results[..4].iter().all(Option::is_none), "{order:?}");
        assert_datagram(&results[4], &data);
        assert_eq!(table.buffered_bytes(), 0);
        orders += 1;
    };
    check(&order);
    let mut i = 0;
    while i < 5 {
        if c[i] < i {
            if i % 2 == 0 {
                order.swap(0, i);
            } else {
                order.swap(c[i], i);
            }
            check(&order);
            c[i] += 1;
            i = 0;
        } else {
            c[i] = 0;
            i += 1;
        }
    }
    assert_eq!(orders, 120);
}

#[test]
fn identical_overlap_counts_duplicate_and_reassembles() {
    let data = datagram(48);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let push = |table: &mut FragmentTable, counters: &mut _, offset: usize, end: usize, more| {
        table.push(
            key(1),
            Fragment {
                offset,
                more_fragments: more,
                payload: &data[offset..end],
            },
            at(1),
            counters,
        )
    };
    assert_eq!(push(&mut table, &mut counters, 0, 24, true), None);
    // Same bytes again, fully inside what is held.
    assert_eq!(push(&mut table, &mut counters, 8, 16, true), None);
    assert_eq!(counters.duplicates, 1);
    // Overlaps [16, 24) with the same bytes and adds [24, 48).
    let whole = push(&mut table, &mut counters, 16, 48, false);
    assert_datagram(&whole, &data);
    assert_eq!(counters.duplicates, 1);
    assert_eq!(counters.overlaps, 0);
}

#[test]
fn conflicting_overlap_keeps_first_copy_and_counts() {
    let data = datagram(32);
    let forged = [0xee; 16];
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let first = Fragment {
        offset: 8,
        more_fragments: true,
        payload: &data[8..24],
    };
    assert_eq!(table.push(key(1), first, at(1), &mut counters), None);
    // [0, 16) overlaps the held [8, 16) with different bytes: only [0, 8) is taken.
    let mut second = data[0..8].to_vec();
    second.extend_from_slice(&forged[..8]);
    let overlapping = Fragment {
        offset: 0,
        more_fragments: true,
        payload: &second,
    };
    assert_eq!(table.push(key(1), overlapping, at(1), &mut counters), None);
    assert_eq!(counters.overlaps, 1);
    // The last fragment rewrites [16, 24) too and brings [24, 32).
    let mut third = forged[..8].to_vec();
    third.extend_from_slice(&data[24..32]);
    let last = Fragment {
        offset: 16,
        more_fragments: false,
        payload: &third,
    };
    let whole = table.push(key(1), last, at(1), &mut counters);
    assert_datagram(&whole, &data);
    assert_eq!(counters.overlaps, 2);
    assert_eq!(counters.duplicates, 0);
    assert_eq!(counters.reassembled, 1);
}

#[test]
fn duplicate_fragment_is_counted_once_and_harmless() {
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let order = [
        fragments[0],
        fragments[0],
        fragments[1],
        fragments[1],
        fragments[2],
    ];
    let results = push_all(&mut table, key(1), &order, &mut counters);
    assert_datagram(&results[4], &data);
    assert_eq!(counters.duplicates, 2);
    assert_eq!(counters.overlaps, 0);
    assert_eq!(counters.reassembled, 1);
    // A copy of the last fragment after completion starts a new datagram that never completes.
    assert_eq!(table.push(key(1), fragments[2], at(1), &mut counters), None);
    assert_eq!(table.len(), 1);
}

#[test]
fn zero_length_middle_fragment_changes_nothing() {
    let data = datagram(16);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let fragments = [
        Fragment {
            offset: 0,
            more_fragments: true,
            payload: &data[..8],
        },
        Fragment {
            offset: 8,
            more_fragments: true,
            payload: &[],
        },
        Fragment {
            offset: 8,
            more_fragments: false,
            payload: &data[8..],
        },
    ];
    let results = push_all(&mut table, key(1), &fragments, &mut counters);
    assert_eq!(results[1], None);
    assert_datagram(&results[2], &data);
    assert_eq!(
        counters.duplicates + counters.overlaps + counters.malformed,
        0
    );
    assert_eq!(counters.reassembled, 1);
}

#[test]
fn zero_length_last_fragment_sets_the_end() {
    let data = datagram(16);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let fragments = [
        Fragment {
            offset: 0,
            more_fragments: true,
            payload: &data[..],
        },
        Fragment {
            offset: 16,
            more_fragments: false,
            payload: &[],
        },
    ];
    let results = push_all(&mut table, key(1), &fragments, &mut counters);
    assert_datagram(&results[1], &data);
}

#[test]
fn atomic_fragment_is_returned_alone() {
    let data = datagram(40);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let pending = Fragment {
        offset: 8,
        more_fragments: true,
        payload: &data[8..16],
    };
    assert_eq!(table.push(key(1), pending, at(1), &mut counters), None);
    let atomic = Fragment {
        offset: 0,
        more_fragments: false,
        payload: &data,
    };
    let whole = table.push(key(1), atomic, at(1), &mut counters);
    assert_datagram(&whole, &data);
    assert_eq!(counters.atomic, 1);
    assert_eq!(counters.reassembled, 0);
    // The pending datagram is untouched.
    assert_eq!(table.len(), 1);
    assert_eq!(table.buffered_bytes(), 8);
}

#[test]
fn fragments_past_the_datagram_cap_leave_a_tombstone() {
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let bytes = [0u8; 16];
    let far = Fragment {
        offset: 65_528,
        more_fragments: true,
        payload: &bytes,
    };
    assert_eq!(table.push(key(1), far, at(1), &mut counters), None);
    assert_eq!(counters.too_large, 1);
    assert_eq!(table.len(), 1);
    assert_eq!(table.buffered_bytes(), 0);
    let first = Fragment {
        offset: 0,
        more_fragments: true,
        payload: &bytes,
    };
    assert_eq!(table.push(key(1), first, at(2), &mut counters), None);
    assert_eq!(counters.ignored, 1);
    assert_eq!(table.buffered_bytes(), 0);
    // After the timeout the tombstone goes without being counted as a timeout.
    table.sweep(at(40), &mut counters);
    assert_eq!(table.len(), 0);
    assert_eq!(counters.timed_out, 0);
}

#[test]
fn oversize_datagram_frees_what_it_held() {
    let limits = FragmentLimits {
        max_datagram_len: 1000,
        ..FragmentLimits::default()
    };
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    let bytes = [1u8; 800];
    let first = Fragment {
        offset: 0,
        more_fragments: true,
        payload: &bytes,
    };
    assert_eq!(table.push(key(1), first, at(1), &mut counters), None);
    assert_eq!(table.buffered_bytes(), 800);
    let second = Fragment {
        offset: 800,
        more_fragments: false,
        payload: &bytes[..208],
    };
    assert_eq!(table.push(key(1), second, at(1), &mut counters), None);
    assert_eq!(counters.too_large, 1);
    assert_eq!(table.buffered_bytes(), 0);
    assert_eq!(table.len(), 1);
}

#[test]
fn malformed_fragments_are_counted() {
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let bytes = [0u8; 24];
    // Non-last fragment of 12 bytes: not a multiple of 8.
    let odd = Fragment {
        offset: 0,
        more_fragments: true,
        payload: &bytes[..12],
    };
    assert_eq!(table.push(key(1), odd, at(1), &mut counters), None);
    assert_eq!(counters.malformed, 1);
    assert_eq!(table.len(), 0);
    // Offset not a multiple of 8.
    let misaligned = Fragment {
        offset: 4,
        more_fragments: false,
        payload: &bytes[..8],
    };
    assert_eq!(table.push(key(1), misaligned, at(1), &mut counters), None);
    assert_eq!(counters.malformed, 2);
    // Two different ends for one datagram abandon it.
    let end_at_24 = Fragment {
        offset: 8,
        more_fragments: false,
        payload: &bytes[..16],
    };
    let end_at_16 = Fragment {
        offset: 8,
        more_fragments: false,
        payload: &bytes[..8],
    };
    assert_eq!(table.push(key(2), end_at_24, at(1), &mut counters), None);
    assert_eq!(table.buffered_bytes(), 16);
    assert_eq!(table.push(key(2), end_at_16, at(1), &mut counters), None);
    assert_eq!(counters.malformed, 3);
    assert_eq!(table.buffered_bytes(), 0);
    // Data past the known end: the datagram is already a tombstone, so this is ignored.
    let past = Fragment {
        offset: 24,
        more_fragments: true,
        payload: &bytes[..8],
    };
    assert_eq!(table.push(key(2), past, at(1), &mut counters), None);
    assert_eq!(counters.ignored, 1);
    // Data past the known end of a live datagram.
    assert_eq!(table.push(key(3), end_at_24, at(1), &mut counters), None);
    assert_eq!(table.push(key(3), past, at(1), &mut counters), None);
    assert_eq!(counters.malformed, 4);
    // A last fragment ending before data already held.
    let early_end = Fragment {
        offset: 0,
        more_fragments: false,
        payload: &bytes[..0],
    };
    let middle = Fragment {
        offset: 16,
        more_fragments: true,
        payload: &bytes[..8],
    };
    assert_eq!(table.push(key(4), middle, at(1), &mut counters), None);
    assert_eq!(
        table.push(key(4), early_end, at(1), &mut counters),
        Some(Vec::new())
    );
    assert_eq!(
        counters.atomic, 1,
        "offset 0 without MF is atomic, never an end"
    );
    let short_end = Fragment {
        offset: 8,
        more_fragments: false,
        payload: &bytes[..8],
    };
    assert_eq!(table.push(key(4), short_end, at(1), &mut counters), None);
    assert_eq!(counters.malformed, 5);
    assert_eq!(counters.reassembled, 0);
}

#[test]
fn too_many_pieces_abandon_the_datagram() {
    let limits = FragmentLimits {
        max_fragments_per_datagram: 4,
        ..FragmentLimits::default()
    };
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    let bytes = [0u8; 8];
    // Every other 8-byte slot, so no two pieces merge.
    for slot in 0..4 {
        let fragment = Fragment {
            offset: slot * 16,
            more_fragments: true,
            payload: &bytes,
        };
        assert_eq!(table.push(key(1), fragment, at(1), &mut counters), None);
    }
    assert_eq!(counters.too_many_fragments, 0);
    assert_eq!(table.buffered_bytes(), 32);
    let fifth = Fragment {
        offset: 64,
        more_fragments: true,
        payload: &bytes,
    };
    assert_eq!(table.push(key(1), fifth, at(1), &mut counters), None);
    assert_eq!(counters.too_many_fragments, 1);
    assert_eq!(table.buffered_bytes(), 0);
    assert_eq!(table.len(), 1);
}

#[test]
fn in_order_fragments_stay_one_piece_under_a_small_piece_cap() {
    let limits = FragmentLimits {
        max_fragments_per_datagram: 2,
        ..FragmentLimits::default()
    };
    let data = datagram(65_000);
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    let fragments = cut(&data, 1232);
    assert_eq!(fragments.len(), 53);
    let results = push_all(&mut table, key(1), &fragments, &mut counters);
    assert_datagram(&results[52], &data);
    assert_eq!(counters.too_many_fragments, 0);
}

#[test]
fn datagrams_time_out_by_packet_time() {
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    assert_eq!(
        table.push(key(1), fragments[0], at(100), &mut counters),
        None
    );
    assert_eq!(
        table.push(key(2), fragments[0], at(110), &mut counters),
        None
    );
    // 30 s exactly is not older than the timeout.
    table.sweep(at(130), &mut counters);
    assert_eq!(table.len(), 2);
    table.sweep(PacketTime::from_nanos(130 * SECOND + 1), &mut counters);
    assert_eq!(table.len(), 1);
    assert_eq!(counters.timed_out, 1);
    assert_eq!(table.buffered_bytes(), 1480);
    // The rest of key 1 arrives too late: a new datagram starts, and never completes.
    assert_eq!(
        table.push(key(1), fragments[1], at(131), &mut counters),
        None
    );
    assert_eq!(
        table.push(key(1), fragments[2], at(131), &mut counters),
        None
    );
    // Key 2 expires on push, without a sweep.
    assert_eq!(
        table.push(key(2), fragments[1], at(141), &mut counters),
        None
    );
    assert_eq!(counters.timed_out, 2);
    assert_eq!(counters.reassembled, 0);
}

#[test]
fn clock_going_backwards_does_not_expire() {
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    assert_eq!(
        table.push(key(1), fragments[0], at(100), &mut counters),
        None
    );
    assert_eq!(
        table.push(key(1), fragments[1], at(50), &mut counters),
        None
    );
    let whole = table.push(key(1), fragments[2], at(50), &mut counters);
    assert_datagram(&whole, &data);
    assert_eq!(counters.timed_out, 0);
}

#[test]
fn count_cap_evicts_the_oldest() {
    let limits = FragmentLimits {
        max_datagrams: 4,
        ..FragmentLimits::default()
    };
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    for id in 0..10 {
        assert_eq!(
            table.push(key(id), fragments[0], at(1), &mut counters),
            None
        );
        assert!(table.len() <= 4);
    }
    assert_eq!(table.len(), 4);
    assert_eq!(counters.evicted, 6);
    assert_eq!(table.buffered_bytes(), 4 * 1480);
    // Key 0 was evicted: its rest starts over. Key 9 is still there and completes.
    assert_eq!(table.push(key(9), fragments[1], at(1), &mut counters), None);
    let whole = table.push(key(9), fragments[2], at(1), &mut counters);
    assert_datagram(&whole, &data);
    assert_eq!(table.push(key(0), fragments[1], at(1), &mut counters), None);
    assert_eq!(table.push(key(0), fragments[2], at(1), &mut counters), None);
    assert_eq!(counters.reassembled, 1);
}

#[test]
fn byte_cap_evicts_the_oldest_and_is_never_exceeded() {
    let limits = FragmentLimits {
        max_bytes: 10_000,
        ..FragmentLimits::default()
    };
    let data = datagram(6000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    for id in 0..20 {
        for fragment in &fragments[..3] {
            assert_eq!(table.push(key(id), *fragment, at(1), &mut counters), None);
            assert!(
                table.buffered_bytes() <= 10_000,
                "{}",
                table.buffered_bytes()
            );
        }
    }
    assert!(counters.evicted >= 18, "{counters:?}");
    assert_eq!(fragments.len(), 5);
    // The newest datagram survived and completes.
    assert_eq!(
        table.push(key(19), fragments[3], at(1), &mut counters),
        None
    );
    assert!(table.buffered_bytes() <= 10_000);
    let whole = table.push(key(19), fragments[4], at(1), &mut counters);
    assert_datagram(&whole, &data);
    assert!(table.buffered_bytes() <= 10_000);
}

#[test]
fn datagram_larger_than_the_byte_cap_is_dropped() {
    let limits = FragmentLimits {
        max_bytes: 1000,
        ..FragmentLimits::default()
    };
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(limits);
    let mut counters = FragmentCounters::default();
    let results = push_all(&mut table, key(1), &fragments, &mut counters);
    assert!(results.iter().all(Option::is_none));
    // Each 1480-byte fragment evicts its own datagram; the 40-byte tail fits.
    assert_eq!(counters.evicted, 2);
    assert_eq!(table.buffered_bytes(), 40);
    assert_eq!(table.len(), 1);
}

#[test]
fn context_and_family_keep_datagrams_apart() {
    let data = datagram(3000);
    let fragments = cut(&data, 1480);
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let v4 = |context| {
        FragmentKey::new(
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            7,
            17,
            context,
        )
    };
    let mapped = FragmentKey::new(
        IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped()),
        IpAddr::V6(Ipv4Addr::new(10, 0, 0, 2).to_ipv6_mapped()),
        7,
        17,
        0,
    );
    let v6 = FragmentKey::new(
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        7,
        17,
        0,
    );
    assert_ne!(v4(0), v4(1));
    assert_ne!(v4(0), mapped);
    assert_eq!(table.push(v4(0), fragments[0], at(1), &mut counters), None);
    assert_eq!(table.push(v4(1), fragments[1], at(1), &mut counters), None);
    assert_eq!(table.push(mapped, fragments[1], at(1), &mut counters), None);
    assert_eq!(table.push(v6, fragments[2], at(1), &mut counters), None);
    assert_eq!(table.len(), 4);
    assert_eq!(table.push(v4(0), fragments[1], at(1), &mut counters), None);
    let whole = table.push(v4(0), fragments[2], at(1), &mut counters);
    assert_datagram(&whole, &data);
}

#[test]
fn counters_add_every_field() {
    let one = FragmentCounters {
        fragments: 1,
        reassembled: 2,
        atomic: 3,
        timed_out: 4,
        evicted: 5,
        overlaps: 6,
        duplicates: 7,
        too_large: 8,
        too_many_fragments: 9,
        malformed: 10,
        ignored: 11,
    };
    let mut sum = one.clone();
    sum.add(&one);
    assert_eq!(
        sum,
        FragmentCounters {
            fragments: 2,
            reassembled: 4,
            atomic: 6,
            timed_out: 8,
            evicted: 10,
            overlaps: 12,
            duplicates: 14,
            too_large: 16,
            too_many_fragments: 18,
            malformed: 20,
            ignored: 22,
        }
    );
}

/// Zeek's `erspan.pcap`, cut to six fragmented GRE datagrams (19 fragments) (see testdata/README.md).
/// Each reassembles to GRE + Ethernet + IPv4 + TCP whose lengths and TCP checksum agree.
#[test]
fn erspan_trace_fragments_reassemble_to_valid_tcp() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/decode/testdata/erspan-fragments.pcap"
    );
    let mut capture = pcap::Capture::from_file(path).expect("test capture opens");
    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let mut inner_lengths = Vec::new();
    let mut checksums = Vec::new();
    let mut packets = 0;
    while let Ok(packet) = capture.next_packet() {
        packets += 1;
        let now = PacketTime::from_secs_nanos(
            packet.header.ts.tv_sec,
            i64::from(packet.header.ts.tv_usec as i32) * 1000,
        );
        let ethernet = etherparse::Ethernet2Slice::from_slice_without_fcs(packet.data)
            .expect("Ethernet frame");
        let ip = etherparse::Ipv4Slice::from_slice(ethernet.payload_slice()).expect("IPv4");
        let header = ip.header();
        if !ip.is_payload_fragmented() {
            continue;
        }
        let key = FragmentKey::new(
            IpAddr::V4(header.source_addr()),
            IpAddr::V4(header.destination_addr()),
            u32::from(header.identification()),
            header.protocol().0,
            0,
        );
        let fragment = Fragment {
            offset: usize::from(header.fragments_offset().value()) * 8,
            more_fragments: header.more_fragments(),
            payload: ip.payload().payload,
        };
        let Some(whole) = table.push(key, fragment, now, &mut counters) else {
            continue;
        };
        let gre = crate::decode::GreView::new(&whole).expect("GRE header");
        let inner = etherparse::Ethernet2Slice::from_slice_without_fcs(gre.payload())
            .expect("inner Ethernet");
        let inner_ip =
            etherparse::Ipv4Slice::from_slice(inner.payload_slice()).expect("inner IPv4");
        let total = usize::from(inner_ip.header().total_len());
        assert_eq!(total, inner.payload_slice().len());
        let tcp = etherparse::TcpSlice::from_slice(inner_ip.payload().payload).expect("inner TCP");
        // The sender used segmentation offload: the field holds only the
        // pseudo-header sum (0x0b64 for these addresses, no length). The
        // checksum over every reassembled byte must match what tshark computes.
        assert_eq!(tcp.checksum(), 0x0b64);
        let checksum = tcp
            .calc_checksum_ipv4(inner_ip.header().source(), inner_ip.header().destination())
            .expect("fits");
        inner_lengths.push(total);
        checksums.push(checksum);
    }
    assert_eq!(packets, 19);
    assert_eq!(inner_lengths, [2960, 5880, 2960, 2779, 2960, 5880]);
    // `tshark -o tcp.check_checksum:TRUE -T fields -e tcp.checksum_calculated`
    assert_eq!(checksums, [0x0b54, 0x0a8d, 0x9663, 0xb782, 0x1f6f, 0x530f]);
    assert_eq!(counters.fragments, 19);
    assert_eq!(counters.reassembled, 6);
    assert_eq!(table.len(), 0);
    assert_eq!(table.buffered_bytes(), 0);
}

/// A UDP datagram over IPv6 built with etherparse, cut behind RFC 8200 Fragment
/// headers, read back with etherparse and pushed last fragment first.
#[test]
fn ipv6_udp_datagram_reassembles_with_valid_checksum() {
    use etherparse::{IpFragOffset, IpNumber, Ipv6FragmentHeader, Ipv6Header, PacketBuilder};

    let source = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    let destination = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
    let quic = datagram(3000);
    let mut packet = Vec::new();
    PacketBuilder::ipv6(source.octets(), destination.octets(), 64)
        .udp(50_000, 443)
        .write(&mut packet, &quic)
        .expect("builds");
    let fragmentable = &packet[Ipv6Header::LEN..];
    assert_eq!(fragmentable.len(), 8 + 3000);

    let mut wire = Vec::new();
    for piece in cut(fragmentable, 1232) {
        let offset = IpFragOffset::try_new((piece.offset / 8) as u16).expect("13 bits");
        let fragment_header =
            Ipv6FragmentHeader::new(IpNumber::UDP, offset, piece.more_fragments, 0xdead_beef);
        let header = Ipv6Header {
            payload_length: (8 + piece.payload.len()) as u16,
            next_header: IpNumber::IPV6_FRAGMENTATION_HEADER,
            hop_limit: 64,
            source: source.octets(),
            destination: destination.octets(),
            ..Ipv6Header::default()
        };
        let mut bytes = header.to_bytes().to_vec();
        bytes.extend_from_slice(&fragment_header.to_bytes());
        bytes.extend_from_slice(piece.payload);
        wire.push(bytes);
    }
    assert_eq!(wire.len(), 3);
    wire.reverse();

    let mut table = FragmentTable::new(FragmentLimits::default());
    let mut counters = FragmentCounters::default();
    let mut whole = None;
    for bytes in &wire {
        let ip = etherparse::Ipv6Slice::from_slice(bytes).expect("IPv6");
        assert!(ip.is_payload_fragmented());
        let (fragment_header, _) =
            Ipv6FragmentHeader::from_slice(&bytes[Ipv6Header::LEN..]).expect("Fragment header");
        let key = FragmentKey::new(
            IpAddr::V6(ip.header().source_addr()),
            IpAddr::V6(ip.header().destination_addr()),
            fragment_header.identification,
            fragment_header.next_header.0,
            0,
        );
        let fragment = Fragment {
            offset: usize::from(fragment_header.fragment_offset.value()) * 8,
            more_fragments: fragment_header.more_fragments,
            payload: ip.payload().payload,
        };
        whole = table.push(key, fragment, at(1), &mut counters);
    }
    let whole = whole.expect("last push completes the datagram");
    let udp = etherparse::UdpSlice::from_slice(&whole).expect("UDP");
    assert_eq!(usize::from(udp.length()), whole.len());
    assert_eq!(udp.destination_port(), 443);
    let checksum = udp
        .to_header()
        .calc_checksum_ipv6_raw(source.octets(), destination.octets(), udp.payload())
        .expect("fits");
    assert_eq!(checksum, udp.checksum());
    assert_eq!(udp.payload(), &quic[..]);
    assert_eq!(counters.reassembled, 1);
}

#[derive(Debug, Clone)]
struct Offer {
    id: u32,
    offset_units: usize,
    len: usize,
    more: bool,
    fill: u8,
    advance_ms: i64,
}

fn offer() -> impl Strategy<Value = Offer> {
    (
        0u32..48,
        0usize..8192,
        0usize..3000,
        any::<bool>(),
        any::<u8>(),
        0i64..200,
    )
        .prop_map(|(id, offset_units, len, more, fill, advance_ms)| Offer {
            id,
            offset_units,
            len,
            more,
            fill,
            advance_ms,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Fragment flood: random keys, offsets and lengths never panic and never pass a cap.
    #[test]
    fn fragment_flood_stays_bounded(offers in proptest::collection::vec(offer(), 1..2000)) {
        let limits = FragmentLimits {
            max_bytes: 20_000,
            max_datagrams: 16,
            timeout: Duration::from_secs(2),
            max_datagram_len: 65_535,
            max_fragments_per_datagram: 8,
        };
        let mut table = FragmentTable::new(limits);
        let mut counters = FragmentCounters::default();
        let buffer = vec![0u8; 3000];
        let mut now = 0i64;
        for offer in &offers {
            now += offer.advance_ms * 1_000_000;
            let mut payload = buffer[..offer.len].to_vec();
            payload.iter_mut().for_each(|byte| *byte = offer.fill);
            // Mostly aligned lengths, so datagrams do grow and complete.
            let len = if offer.fill % 4 == 0 { offer.len } else { offer.len & !7 };
            let fragment = Fragment {
                offset: offer.offset_units * 8 % 12_000,
                more_fragments: offer.more,
                payload: &payload[..len],
            };
            let whole = table.push(key(offer.id), fragment, PacketTime::from_nanos(now), &mut counters);
            if let Some(whole) = whole {
                prop_assert!(whole.len() <= 65_535);
            }
            prop_assert!(table.buffered_bytes() <= 20_000);
            prop_assert!(table.len() <= 16);
            prop_assert!(table.order.len() <= 2 * 16 + 64 + 1);
        }
        prop_assert_eq!(counters.fragments, offers.len() as u64);
        table.sweep(PacketTime::from_nanos(now + 3 * SECOND), &mut counters);
        prop_assert_eq!(table.len(), 0);
        prop_assert_eq!(table.buffered_bytes(), 0);
    }

    /// Any arrival order, with duplicates and overlapping re-cuts of the same bytes, gives back the datagram.
    #[test]
    fn any_order_with_overlaps_reassembles(
        len in 1usize..5000,
        cuts in proptest::collection::vec((0usize..700, 1usize..100), 1..40),
        seed in any::<u64>(),
    ) {
        let data = datagram(len);
        let mut fragments = cut(&data, 1024);
        // Extra overlapping fragments made of the same bytes.
        for (start_units, len_units) in cuts {
            let start = (start_units * 8).min(len.saturating_sub(1) & !7);
            let end = (start + len_units * 8).min(len);
            let more = end < len;
            let end = if more { start + (end - start) / 8 * 8 } else { end };
            fragments.push(Fragment { offset: start, more_fragments: more, payload: &data[start..end] });
        }
        // Deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..fragments.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            fragments.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut table = FragmentTable::new(FragmentLimits { max_fragments_per_datagram: 1000, ..FragmentLimits::default() });
        let mut counters = FragmentCounters::default();
        let mut complete = None;
        for fragment in &fragments {
            if let Some(whole) = table.push(key(1), *fragment, at(1), &mut counters) {
                complete = Some(whole);
                break;
            }
        }
        prop_assert!(complete.as_deref() == Some(&data[..]), "len {}", len);
        prop_assert_eq!(counters.overlaps, 0);
        prop_assert_eq!(counters.malformed, 0);
    }
}
