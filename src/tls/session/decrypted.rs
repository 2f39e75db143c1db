//! TLS 1.3 with a key log: the session's encrypted handshake records are
//! opened (see `decrypt`) and their messages fed to the same state machine
//! and certificate summaries as TLS ≤ 1.2. Without secrets for the session,
//! a live store holds its encrypted handshake records (bounded by the
//! handshake cap, and by `KeyLogLimits::hold` of packet time) in case the
//! secrets are written a little after the packets were seen.

use std::sync::Arc;

use super::super::decrypt::RecordDecrypter;
use super::super::keylog::{KeyLogStore, Secret, SessionSecrets};
use super::super::summary::*;
use super::super::Counters;
use super::{Session, CONTENT_ALERT, CONTENT_APPLICATION_DATA, CONTENT_HANDSHAKE};
use crate::time::PacketTime;
use crate::x509::CertificateCache;

/// Handshake type codes read from decrypted TLS 1.3 messages (RFC 8446 §4).
const ENCRYPTED_EXTENSIONS: u8 = 8;
const CERTIFICATE: u8 = 11;
const CERTIFICATE_REQUEST: u8 = 13;
const FINISHED: u8 = 20;

/// Records tried under handshake keys before a direction gives up: the
/// client's 0-RTT records come first and do not open with them.
const MAX_SKIPPED_RECORDS: u8 = 8;

#[derive(Debug, Default, PartialEq, Eq)]
enum Keys {
    /// No secrets yet; records are held.
    #[default]
    Waiting,
    Active,
    /// No secrets (or a suite tlstap cannot read): the session is reported as seen.
    Unavailable,
}

/// One TLS 1.3 session's decryption state, boxed in the session.
#[derive(Debug, Default)]
pub(super) struct Decryption {
    keys: Keys,
    suite: u16,
    /// Current keys per role (0 = client, 1 = server): handshake keys until
    /// that side's Finished, then its first application keys if logged.
    decrypters: [Option<RecordDecrypter>; 2],
    application: [Option<Secret>; 2],
    skipped: [u8; 2],
    finished: [bool; 2],
    /// Server records after the client's Finished: the server's answer.
    server_after_client_finished: u32,
    /// Records waiting for secrets: role byte, 2-byte length, header, body.
    held: Vec<u8>,
    held_since: Option<PacketTime>,
    plaintext: Vec<u8>,
}

impl Decryption {
    /// Heap bytes held (the box itself, cipher key schedules, records held
    /// for their secrets and the plaintext buffer), for the memory cap.
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self
                .decrypters
                .iter()
                .flatten()
                .map(RecordDecrypter::heap_bytes)
                .sum::<usize>()
            + self.held.capacity()
            + self.plaintext.capacity()
    }
}

impl Session {
    /// Called on a TLS 1.3 ServerHello of a TCP session: look up its secrets.
    pub(super) fn start_decryption(&mut self, now: PacketTime, counters: &mut Counters) {
        let Some(store) = self.keylog.clone() else {
            return;
        };
        if self.summary.carrier != super::super::fingerprint::Carrier::Tcp {
            return;
        }
        let Some(hello) = self.summary.server_hello.as_deref() else {
            return;
        };
        let mut decryption = Box::new(Decryption {
            suite: hello.cipher_suite,
            ..Decryption::default()
        });
        match self.lookup(&store, now) {
            Some(secrets) => self.install(&mut decryption, &secrets, counters),
            None if store.limits().follow => {}
            None => {
                counters.handshakes_keys_missing += 1;
                decryption.keys = Keys::Unavailable;
            }
        }
        self.decryption = Some(decryption);
    }

    fn lookup(&self, store: &Arc<KeyLogStore>, now: PacketTime) -> Option<SessionSecrets> {
        let random = &self.summary.client_hello.as_deref()?.random;
        store.lookup(random, now)
    }

    fn install(
        &mut self,
        decryption: &mut Decryption,
        secrets: &SessionSecrets,
        counters: &mut Counters,
    ) {
        let open = |secret: Option<Secret>| {
            secret.and_then(|s| RecordDecrypter::new(decryption.suite, s.as_bytes()))
        };
        let client = open(secrets.client_handshake);
        let server = open(secrets.server_handshake);
        if client.is_none() || server.is_none() {
            counters.handshakes_keys_missing += 1;
            decryption.keys = Keys::Unavailable;
            return;
        }
        decryption.decrypters = [client, server];
        decryption.application = [secrets.client_application, secrets.server_application];
        decryption.keys = Keys::Active;
    }

    /// Offers an encrypted record to the decryption; true when it was
    /// consumed (opened as handshake or alert, or held for later).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn decrypt_record(
        &mut self,
        role: Direction,
        record_version: u16,
        body: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> bool {
        let Some(mut decryption) = self.decryption.take() else {
            return false;
        };
        if decryption.keys == Keys::Waiting {
            self.wait_for_keys(&mut decryption, now, counters, certificates);
        }
        let consumed = match decryption.keys {
            Keys::Active => self.open_record(
                &mut decryption,
                role,
                record_version,
                body,
                now,
                counters,
                certificates,
            ),
            Keys::Waiting => {
                hold(
                    &mut decryption,
                    role,
                    record_version,
                    body,
                    now,
                    self.limits,
                );
                false
            }
            Keys::Unavailable => false,
        };
        if self.decryption.is_none() {
            self.decryption = Some(decryption);
        }
        consumed
    }

    /// Tries the store again; replays the held records when the secrets came,
    /// gives up when the hold is over.
    fn wait_for_keys(
        &mut self,
        decryption: &mut Decryption,
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        let Some(store) = self.keylog.clone() else {
            decryption.keys = Keys::Unavailable;
            return;
        };
        if let Some(secrets) = self.lookup(&store, now) {
            self.install(decryption, &secrets, counters);
            if decryption.keys == Keys::Active {
                let held = std::mem::take(&mut decryption.held);
                self.replay(decryption, &held, now, counters, certificates);
            }
            return;
        }
        let expired = decryption
            .held_since
            .is_some_and(|since| now.since(since) > store.limits().hold);
        if expired {
            counters.handshakes_keys_missing += 1;
            decryption.keys = Keys::Unavailable;
            decryption.held = Vec::new();
        }
    }

    fn replay(
        &mut self,
        decryption: &mut Decryption,
        held: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        let mut rest = held;
        while let [role, high, low, tail @ ..] = rest {
            let length = usize::from(u16::from_be_bytes([*high, *low]));
            let Some((record, next)) = tail.split_at_checked(length) else {
                break;
            };
            rest = next;
            let role = if *role == 0 {
                Direction::ToServer
            } else {
                Direction::ToClient
            };
            let version = u16::from_be_bytes([record[1], record[2]]);
            let body = &record[5..];
            if self.open_record(decryption, role, version, body, now, counters, certificates) {
                // It was counted as application data while it waited.
                let count = &mut self.summary.application_records[role.index()];
                *count = count.saturating_sub(1);
            }
            if self.done.is_some() {
                break;
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn open_record(
        &mut self,
        decryption: &mut Decryption,
        role: Direction,
        record_version: u16,
        body: &[u8],
        now: PacketTime,
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) -> bool {
        let index = role.index();
        if role == Direction::ToClient && decryption.finished[0] {
            decryption.server_after_client_finished += 1;
        }
        let Some(decrypter) = decryption.decrypters[index].as_mut() else {
            return false;
        };
        let Ok(length) = u16::try_from(body.len()) else {
            return false;
        };
        let [version_high, version_low] = record_version.to_be_bytes();
        let [length_high, length_low] = length.to_be_bytes();
        let header = [
            CONTENT_APPLICATION_DATA,
            version_high,
            version_low,
            length_high,
            length_low,
        ];
        let mut plaintext = std::mem::take(&mut decryption.plaintext);
        let Some(content_type) = decrypter.open(&header, body, &mut plaintext) else {
            counters.records_decrypt_failed += 1;
            decryption.skipped[index] = decryption.skipped[index].saturating_add(1);
            // Only a client that offered 0-RTT sends records under other keys first.
            let early_data = role == Direction::ToServer
                && self
                    .summary
                    .client_hello
                    .as_deref()
                    .is_some_and(|hello| hello.early_data);
            if decrypter.sequence() > 0
                || !early_data
                || decryption.skipped[index] >= MAX_SKIPPED_RECORDS
            {
                // Keys changed (KeyUpdate, or application keys not logged).
                decryption.decrypters[index] = None;
            }
            decryption.plaintext = plaintext;
            return false;
        };
        counters.records_decrypted += 1;
        if !self.summary.decrypted {
            // Decrypted means a record opened, not merely that secrets were logged.
            self.summary.decrypted = true;
            counters.handshakes_decrypted += 1;
        }
        let consumed = match content_type {
            CONTENT_HANDSHAKE | CONTENT_ALERT => {
                // The messages go through the session's own framing;
                // `decryption` is out of `self` meanwhile, so Finished is
                // noted by looking at the summary afterwards.
                let before = self.summary.client_finished;
                let server_finished_before = self.server_finished;
                self.handle_record(
                    role,
                    content_type,
                    record_version,
                    &plaintext,
                    now,
                    counters,
                    certificates,
                );
                if role == Direction::ToServer && !before && self.summary.client_finished {
                    decryption.finished[0] = true;
                    decryption.decrypters[0] = decryption.application[0]
                        .and_then(|s| RecordDecrypter::new(decryption.suite, s.as_bytes()));
                }
                if role == Direction::ToClient && !server_finished_before && self.server_finished {
                    decryption.finished[1] = true;
                    decryption.decrypters[1] = decryption.application[1]
                        .and_then(|s| RecordDecrypter::new(decryption.suite, s.as_bytes()));
                }
                true
            }
            // Application data opened with the first application keys.
            _ => false,
        };
        decryption.plaintext = plaintext;
        consumed
    }

    /// A decrypted TLS 1.3 handshake message (RFC 8446 §4.3, §4.4).
    pub(super) fn handle_decrypted_message(
        &mut self,
        role: Direction,
        message: &[u8],
        counters: &mut Counters,
        certificates: &mut CertificateCache,
    ) {
        let Some((&kind, body)) = message.split_first() else {
            return;
        };
        let body = body.get(3..).unwrap_or(&[]);
        counters.messages_parsed += 1;
        match (role, kind) {
            (Direction::ToClient, ENCRYPTED_EXTENSIONS) => {
                // §4.3.1: ALPN travels here in TLS 1.3, not in the ServerHello.
                if let Some(block) = body.get(2..) {
                    let mut extensions = ServerHelloSummary::default();
                    super::super::hello::summarize_server_extensions(&mut extensions, block);
                    if let Some(hello) = self.summary.server_hello.as_deref_mut() {
                        if hello.alpn.is_none() {
                            hello.alpn = extensions.alpn;
                        }
                    }
                }
            }
            (Direction::ToClient, CERTIFICATE_REQUEST) => self.summary.certificate_requested = true,
            (_, CERTIFICATE) => {
                let entries = certificate_entries(body);
                if !self.accept_chain(role, entries, counters, certificates) {
                    counters.messages_malformed += 1;
                    if self.summary.parse_error.is_none() {
                        self.summary.parse_error =
                            Some(super::super::TlsError::BadHandshakeMessage);
                    }
                }
            }
            (Direction::ToClient, FINISHED) => self.server_finished = true,
            (Direction::ToServer, FINISHED) => {
                self.summary.client_finished = true;
                self.summary.established = true;
            }
            _ => {}
        }
    }

    /// Records are being held until the session's secrets are logged.
    pub(super) fn holding_for_keys(&self) -> bool {
        self.decryption
            .as_deref()
            .is_some_and(|decryption| decryption.keys == Keys::Waiting)
    }

    /// TLS 1.3 with keys: the handshake is over once the client's Finished
    /// was read and the server answered it (so a server's alert rejecting a
    /// client certificate, readable with the application secret, is seen).
    pub(super) fn decrypted_established(&self) -> Option<bool> {
        let decryption = self.decryption.as_deref()?;
        match decryption.keys {
            Keys::Active if self.summary.decrypted => {
                Some(decryption.finished[0] && decryption.server_after_client_finished > 0)
            }
            // Secrets that open nothing: judge by record counts as without keys.
            Keys::Active if decryption.decrypters.iter().all(Option::is_none) => None,
            Keys::Active => Some(false),
            // Still waiting for secrets: keep the session open.
            Keys::Waiting if decryption.held_since.is_some() => Some(false),
            _ => None,
        }
    }
}

/// Keeps a record until secrets arrive; past the cap the wait is over.
fn hold(
    decryption: &mut Decryption,
    role: Direction,
    record_version: u16,
    body: &[u8],
    now: PacketTime,
    limits: super::super::TlsLimits,
) {
    if decryption.held_since.is_none() {
        decryption.held_since = Some(now);
    }
    let needed = 3 + 5 + body.len();
    let Ok(length) = u16::try_from(5 + body.len()) else {
        decryption.keys = Keys::Unavailable;
        return;
    };
    if decryption.held.len() + needed > limits.max_handshake_bytes {
        decryption.keys = Keys::Unavailable;
        decryption.held = Vec::new();
        return;
    }
    decryption.held.push(u8::from(role == Direction::ToClient));
    decryption.held.extend_from_slice(&length.to_be_bytes());
    decryption.held.push(CONTENT_APPLICATION_DATA);
    decryption
        .held
        .extend_from_slice(&record_version.to_be_bytes());
    decryption
        .held
        .extend_from_slice(&(body.len() as u16).to_be_bytes());
    decryption.held.extend_from_slice(body);
}

/// TLS 1.3 Certificate (RFC 8446 §4.4.2): a request context, then entries
/// of a 3-byte-length certificate and 2-byte-length extensions each.
fn certificate_entries(body: &[u8]) -> Option<Vec<&[u8]>> {
    let (&context_length, rest) = body.split_first()?;
    let rest = rest.get(usize::from(context_length)..)?;
    let list_length = read_u24(rest)?;
    let mut list = rest.get(3..3 + list_length)?;
    let mut entries = Vec::new();
    while !list.is_empty() {
        let length = read_u24(list)?;
        let der = list.get(3..3 + length)?;
        let after = list.get(3 + length..)?;
        let extensions = usize::from(u16::from_be_bytes([*after.first()?, *after.get(1)?]));
        list = after.get(2 + extensions..)?;
        entries.push(der);
    }
    Some(entries)
}

fn read_u24(bytes: &[u8]) -> Option<usize> {
    let [a, b, c, ..] = bytes else { return None };
    Some((usize::from(*a) << 16) | (usize::from(*b) << 8) | usize::from(*c))
}

#[cfg(test)]
mod tests {
    use super::certificate_entries;

    #[test]
    fn tls13_certificate_entries_skip_their_extensions() {
        // context "" ; list of 2 entries: [01 02] with 4 bytes of extensions, [03] with none
        let body = [
            0, // request context length
            0, 0, 17, // list length
            0, 0, 2, 1, 2, 0, 4, 0, 5, 0, 0, // entry 1 + status_request-ish extension
            0, 0, 1, 3, 0, 0, // entry 2
        ];
        let entries = certificate_entries(&body).expect("parses");
        assert_eq!(entries, vec![&[1u8, 2][..], &[3u8][..]]);
    }

    #[test]
    fn tls13_certificate_with_short_lengths_is_refused() {
        assert!(certificate_entries(&[]).is_none());
        assert!(certificate_entries(&[0, 0, 0, 9, 0, 0, 2, 1]).is_none());
        assert!(certificate_entries(&[5, 0]).is_none());
        // Empty list: a client without a certificate.
        assert_eq!(certificate_entries(&[0, 0, 0, 0]), Some(vec![]));
    }
}
