//! Attacker-controlled bytes: no panic, bounded state, errors counted.

use proptest::prelude::*;
use tlstap::capture::LinkType;
use tlstap::decode::{decode, DecodeConfig};
use tlstap::time::PacketTime;
use tlstap::tls::{Counters, Direction, EndReason, Session, TlsError, TlsLimits, Verdict};

fn feed_all(chunks: &[(bool, Vec<u8>)]) -> (Vec<Verdict>, Counters) {
    let mut session = Session::new(TlsLimits::default());
    let mut counters = Counters::default();
    let mut verdicts = Vec::new();
    for (to_server, bytes) in chunks {
        let direction = if *to_server {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        let verdict = session.feed(
            direction,
            bytes,
            PacketTime::ZERO,
            &mut counters,
            &mut Default::default(),
        );
        verdicts.push(verdict);
        if verdict != Verdict::NeedMore {
            break;
        }
    }
    let _ = session.finish(EndReason::EndOfCapture);
    (verdicts, counters)
}

/// A ClientHello record header followed by arbitrary bytes: gets past the
/// "is this TLS" check so the fuzzer exercises the message parsers.
fn tls_prefixed(body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0x16, 0x03, 0x01];
    let length = body.len().min(0xffff) as u16;
    out.extend_from_slice(&length.to_be_bytes());
    out.push(0x01);
    out.extend_from_slice(&body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_in_either_direction_never_panic(chunks in proptest::collection::vec((any::<bool>(), proptest::collection::vec(any::<u8>(), 0..600)), 0..12)) {
        let _ = feed_all(&chunks);
    }

    #[test]
    fn arbitrary_handshake_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..4000), split in 0usize..4000) {
        let record = tls_prefixed(body);
        let split = split.min(record.len());
        let _ = feed_all(&[(true, record[..split].to_vec()), (true, record[split..].to_vec()), (false, record.clone())]);
    }

    #[test]
    fn arbitrary_frames_never_panic_the_decoder(link in prop_oneof![Just(1i32), Just(0), Just(101), Just(113), Just(276), Just(228), Just(229)], bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode(LinkType(link), &bytes, &DecodeConfig::default());
    }
}

#[test]
fn absurd_record_length_is_a_parse_error_not_a_wait() {
    // A ClientHello record header claiming 65535 bytes: more than TLS allows.
    let mut bytes = vec![0x16, 0x03, 0x01, 0xff, 0xff, 0x01, 0, 0, 0];
    bytes.resize(64, 0);
    let (verdicts, counters) = feed_all(&[(true, bytes)]);
    assert_eq!(verdicts, vec![Verdict::Done(EndReason::ParseError)]);
    assert_eq!(counters.records_malformed, 1);
}

#[test]
fn absurd_handshake_message_length_stops_at_the_cap() {
    // A ClientHello message claiming 16 MiB, delivered in full-size records.
    let mut session = Session::new(TlsLimits::default());
    let mut counters = Counters::default();
    let mut first = vec![0x16, 0x03, 0x01, 0x40, 0x00, 0x01, 0xff, 0xff, 0xff];
    first.resize(5 + 0x4000, 0);
    let verdict = session.feed(
        Direction::ToServer,
        &first,
        PacketTime::ZERO,
        &mut counters,
        &mut Default::default(),
    );
    assert_eq!(verdict, Verdict::Done(EndReason::Truncated));
    let (summary, reason) = session.finish(EndReason::EndOfCapture);
    assert_eq!(reason, EndReason::Truncated);
    assert!(summary.truncated);
    assert_eq!(summary.parse_error, Some(TlsError::MessageTooLong));
}

#[test]
fn endless_small_records_hit_the_per_direction_byte_cap() {
    let limits = TlsLimits {
        max_handshake_bytes: 4096,
        ..TlsLimits::default()
    };
    let mut session = Session::new(limits);
    let mut counters = Counters::default();
    // A plausible start, then an endless stream of tiny handshake records.
    let mut verdict = session.feed(
        Direction::ToServer,
        &[0x16, 0x03, 0x01, 0x00, 0x01, 0x01],
        PacketTime::ZERO,
        &mut counters,
        &mut Default::default(),
    );
    let mut fed = 6;
    while verdict == Verdict::NeedMore && fed < 1_000_000 {
        verdict = session.feed(
            Direction::ToServer,
            &[0x16, 0x03, 0x01, 0x00, 0x01, 0x00],
            PacketTime::ZERO,
            &mut counters,
            &mut Default::default(),
        );
        fed += 6;
    }
    assert_eq!(verdict, Verdict::Done(EndReason::Truncated));
    assert!(fed <= 4096 + 6, "stopped after {fed} bytes");
    assert_eq!(counters.handshakes_truncated, 1);
}

#[test]
fn plaintext_first_bytes_are_not_tls() {
    let (verdicts, counters) = feed_all(&[(true, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec())]);
    assert_eq!(verdicts, vec![Verdict::NotTls]);
    assert_eq!(counters.sessions_not_tls, 1);
}

#[test]
fn application_data_without_a_handshake_is_mid_stream() {
    let (verdicts, counters) = feed_all(&[(false, vec![0x17, 0x03, 0x03, 0x00, 0x20, 0xaa, 0xbb])]);
    assert_eq!(verdicts, vec![Verdict::MidStream]);
    assert_eq!(counters.sessions_midstream, 1);
}
