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

/// rustls's key log as NSS text.
#[derive(Debug, Default)]
struct Logged(std::sync::Mutex<String>);

impl rustls::KeyLog for Logged {
    fn log(&self, label: &str, random: &[u8], secret: &[u8]) {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let mut text = self.0.lock().expect("lock");
        text.push_str(&format!("{label} {} {}\n", hex(random), hex(secret)));
    }
}

/// Feeds a TLS 1.3 handshake one flight at a time, `step` ms apart, and
/// calls `between` after each flight; returns the summary.
fn run_live(
    wire: &[(Side, Vec<u8>)],
    store: std::sync::Arc<crate::tls::keylog::KeyLogStore>,
    mut between: impl FnMut(usize),
) -> (HandshakeSummary, EndReason, Counters) {
    let mut session = Session::new(TlsLimits::default()).with_keylog(Some(store));
    let mut counters = Counters::default();
    let mut certificates = Default::default();
    let mut verdict = Verdict::NeedMore;
    for (at, (side, bytes)) in wire.iter().enumerate() {
        let direction = match side {
            Side::Client => Direction::ToServer,
            Side::Server => Direction::ToClient,
        };
        let now = PacketTime::from_nanos(at as i64 * 500_000_000);
        verdict = session.feed(direction, bytes, now, &mut counters, &mut certificates);
        if verdict != Verdict::NeedMore {
            break;
        }
        between(at);
    }
    let reason = match verdict {
        Verdict::Done(reason) => reason,
        _ => EndReason::ConnectionClosed,
    };
    let (summary, reason) = session.finish(reason);
    (summary, reason, counters)
}

fn tls13_logged_wire() -> (Vec<(Side, Vec<u8>)>, String) {
    let pki = Pki::new(&["api.internal"]);
    let log = std::sync::Arc::new(Logged::default());
    let options = HandshakeOptions {
        client_versions: vec![&rustls::version::TLS13],
        key_log: Some(log.clone()),
        ..HandshakeOptions::default()
    };
    let wire = handshake(&pki, &options);
    let text = log.0.lock().expect("lock").clone();
    (wire, text)
}

#[test]
fn live_session_is_held_until_its_secrets_are_appended_to_the_key_log() {
    use std::io::Write;
    let (wire, text) = tls13_logged_wire();
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("keys.log");
    std::fs::write(&path, "").expect("write");
    let limits = crate::tls::keylog::KeyLogLimits {
        follow: true,
        refresh_interval: std::time::Duration::ZERO,
        ..Default::default()
    };
    let store = std::sync::Arc::new(
        crate::tls::keylog::KeyLogStore::open(std::slice::from_ref(&path), limits).expect("open"),
    );
    // The secrets reach the file only after the client's Finished was sent.
    let (summary, reason, counters) = run_live(&wire, store, |at| {
        if at == 2 {
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .expect("append");
            file.write_all(text.as_bytes()).expect("write");
        }
    });
    assert!(summary.decrypted, "{counters:?}");
    assert_eq!(reason, EndReason::HandshakeDone);
    assert_eq!(summary.server_chain.certificates.len(), 2);
    assert!(summary.client_finished);
    assert_eq!(counters.handshakes_decrypted, 1);
}

#[test]
fn live_session_without_secrets_is_released_after_the_hold() {
    let (wire, _) = tls13_logged_wire();
    let limits = crate::tls::keylog::KeyLogLimits {
        follow: true,
        hold: std::time::Duration::from_millis(100),
        ..Default::default()
    };
    let store = std::sync::Arc::new(crate::tls::keylog::KeyLogStore::from_text(b"", limits));
    let (summary, reason, counters) = run_live(&wire, store, |_| {});
    assert!(!summary.decrypted);
    assert!(summary.established);
    assert_eq!(reason, EndReason::HandshakeDone);
    assert!(summary.server_chain.is_empty());
    assert_eq!(counters.handshakes_keys_missing, 1);
}
