//! Session state machine on real rustls handshakes, cut in hostile ways.

#[path = "../../../tests/support/mod.rs"]
mod support;

use super::*;
use support::{handshake, HandshakeOptions, Pki, Side};

fn run(wire: &[(Side, Vec<u8>)], chunk: usize) -> (HandshakeSummary, EndReason, Counters) {
    let mut session = Session::new(TlsLimits::default());
    let mut counters = Counters::default();
    let mut verdict = Verdict::NeedMore;
    'outer: for (side, bytes) in wire {
        let direction = match side {
            Side::Client => Direction::ToServer,
            Side::Server => Direction::ToClient,
        };
        for piece in bytes.chunks(chunk.max(1)) {
            verdict = session.feed(
                direction,
                piece,
                PacketTime::from_nanos(1),
                &mut counters,
                &mut Default::default(),
            );
            if verdict != Verdict::NeedMore {
                break 'outer;
            }
        }
    }
    assert!(matches!(verdict, Verdict::Done(_)), "{verdict:?}");
    let (summary, reason) = session.finish(EndReason::EndOfCapture);
    (summary, reason, counters)
}

fn tls12_wire() -> Vec<(Side, Vec<u8>)> {
    let pki = Pki::new(&["api.internal"]);
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS12],
        client_auth: true,
        ..HandshakeOptions::default()
    };
    handshake(&pki, &options)
}

#[test]
fn handshake_fed_one_byte_at_a_time_matches_whole_flights() {
    let wire = tls12_wire();
    let (whole, reason, _) = run(&wire, usize::MAX);
    let (bytewise, _, counters) = run(&wire, 1);
    assert_eq!(reason, EndReason::HandshakeDone);
    assert_eq!(whole, bytewise);
    assert!(whole.established);
    assert_eq!(whole.server_chain.certificates.len(), 2);
    assert_eq!(whole.client_chain.certificates.len(), 2);
    assert!(whole.certificate_requested);
    assert_eq!(whole.version(), Some(ProtocolVersion::TLS12));
    assert!(counters.messages_parsed >= 8, "{counters:?}");
    assert_eq!(counters.messages_malformed, 0);
}

#[test]
fn client_hello_sent_by_the_responder_swaps_roles() {
    let wire = tls12_wire();
    let mut session = Session::new(TlsLimits::default());
    let mut counters = Counters::default();
    // The flow guessed the initiator wrong: the ClientHello arrives "to client".
    let verdict = session.feed(
        Direction::ToClient,
        &wire[0].1,
        PacketTime::ZERO,
        &mut counters,
        &mut Default::default(),
    );
    assert_eq!(verdict, Verdict::NeedMore);
    session.feed(
        Direction::ToServer,
        &wire[1].1,
        PacketTime::ZERO,
        &mut counters,
        &mut Default::default(),
    );
    let (summary, _) = session.finish(EndReason::EndOfCapture);
    assert!(summary.roles_swapped);
    assert!(summary.client_hello.is_some());
    assert!(summary.server_hello.is_some());
}

#[test]
fn chain_longer_than_the_cap_keeps_the_first_certificates_and_counts_the_rest() {
    let wire = tls12_wire();
    let limits = TlsLimits {
        max_chain_certificates: 1,
        ..TlsLimits::default()
    };
    let mut session = Session::new(limits);
    let mut counters = Counters::default();
    for (side, bytes) in &wire {
        let direction = if *side == Side::Client {
            Direction::ToServer
        } else {
            Direction::ToClient
        };
        if session.feed(
            direction,
            bytes,
            PacketTime::ZERO,
            &mut counters,
            &mut Default::default(),
        ) != Verdict::NeedMore
        {
            break;
        }
    }
    let (summary, _) = session.finish(EndReason::EndOfCapture);
    assert_eq!(summary.server_chain.certificates.len(), 1);
    assert_eq!(summary.server_chain.dropped, 1);
    assert_eq!(counters.certificates_dropped, 2, "one from each chain");
}

#[test]
fn alerts_beyond_the_cap_are_counted_not_kept() {
    let limits = TlsLimits {
        max_alerts: 2,
        ..TlsLimits::default()
    };
    let mut session = Session::new(limits);
    let mut counters = Counters::default();
    let wire = tls12_wire();
    session.feed(
        Direction::ToServer,
        &wire[0].1,
        PacketTime::ZERO,
        &mut counters,
        &mut Default::default(),
    );
    // Five warning-level close_notify alerts from the client.
    for _ in 0..5 {
        session.feed(
            Direction::ToServer,
            &[0x15, 0x03, 0x03, 0x00, 0x02, 0x01, 0x00],
            PacketTime::ZERO,
            &mut counters,
            &mut Default::default(),
        );
    }
    let (summary, _) = session.finish(EndReason::EndOfCapture);
    assert_eq!(summary.alerts.len(), 2);
    assert_eq!(counters.alerts_dropped, 3);
    assert_eq!(summary.alerts[0].description, Some(0));
    assert!(!summary.alerts[0].is_fatal());
}

#[test]
fn sslv2_compatible_client_hello_is_summarised() {
    // SSL 2.0-format CLIENT-HELLO offering TLS 1.0 with one TLS and one SSL 2.0 cipher.
    let hello = [
        0x80, 0x1f, 0x01, 0x03, 0x01, 0x00, 0x06, 0x00, 0x00, 0x00, 0x10, 0x01, 0x00, 0x80, 0x00,
        0x00, 0x2f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
    ];
    let mut session = Session::new(TlsLimits::default());
    let mut counters = Counters::default();
    assert_eq!(
        session.feed(
            Direction::ToServer,
            &hello,
            PacketTime::ZERO,
            &mut counters,
            &mut Default::default()
        ),
        Verdict::NeedMore
    );
    let (summary, _) = session.finish(EndReason::ConnectionClosed);
    let client = summary.client_hello.expect("client hello");
    assert!(client.sslv2_format);
    assert_eq!(client.legacy_version, 0x0301);
    assert_eq!(client.cipher_suites, vec![0x002f]);
    assert_eq!(client.sslv2_cipher_specs, vec![0x01_0080]);
}
