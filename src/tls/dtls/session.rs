//! The per-flow DTLS state: one [`DtlsStream`] per direction, or both in a
//! [`DtlsConnection`]. Record framing is in [`super::record`], reassembly in
//! [`super::handshake`].

use super::handshake::Pending;
use super::{DtlsCounters, DtlsEvent, DtlsLimits};
use crate::tls::summary::Direction;

/// One direction of a DTLS flow: record framing and handshake reassembly.
#[derive(Debug)]
pub struct DtlsStream {
    pub(super) limits: DtlsLimits,
    /// The next `message_seq` to deliver. Set by the first hello seen
    /// (ClientHello, ServerHello or HelloVerifyRequest open a side's first
    /// flight), not by the first fragment: that may be a reordered later
    /// message, and a capture may start after the cookie exchange (seq 1).
    pub(super) next_seq: Option<u32>,
    pub(super) pending: Vec<Pending>,
    pub(super) buffered: usize,
    pub(super) client_hellos: u32,
    /// A message was dropped at a cap: the handshake will not complete here.
    pub(super) truncated: bool,
    /// Holds a message while it is rewritten to TLS form.
    pub(super) scratch: Vec<u8>,
}

impl DtlsStream {
    pub fn new(limits: DtlsLimits) -> Self {
        Self {
            limits,
            next_seq: None,
            pending: Vec::new(),
            buffered: 0,
            client_hellos: 0,
            truncated: false,
            scratch: Vec::new(),
        }
    }

    /// Bytes held for incomplete or out-of-order messages; never above
    /// `max_buffered_bytes`.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Whether a handshake message was dropped at a cap (too long, too many
    /// held, too many bytes held, too fragmented). Messages after it wait for it
    /// and never arrive, so the consumer should report the session truncated.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }
}

/// Both directions of one DTLS flow, for callers that prefer one value per flow.
#[derive(Debug)]
pub struct DtlsConnection {
    pub(super) streams: [DtlsStream; 2],
}

impl DtlsStream {
    /// Heap bytes held, for the memory cap.
    pub fn heap_bytes(&self) -> usize {
        let messages: usize = self
            .pending
            .iter()
            .map(|p| p.body.capacity() + p.covered.capacity() * 16)
            .sum();
        messages
            + self.pending.capacity() * std::mem::size_of::<Pending>()
            + self.scratch.capacity()
    }
}

impl DtlsConnection {
    /// Heap bytes held by both directions, for the memory cap.
    pub fn heap_bytes(&self) -> usize {
        self.streams.iter().map(DtlsStream::heap_bytes).sum()
    }

    pub fn new(limits: DtlsLimits) -> Self {
        Self {
            streams: [DtlsStream::new(limits), DtlsStream::new(limits)],
        }
    }

    /// Feeds one datagram travelling `direction`; see [`DtlsStream::on_datagram`].
    pub fn on_datagram(
        &mut self,
        direction: Direction,
        datagram: &[u8],
        counters: &mut DtlsCounters,
        out: &mut dyn FnMut(DtlsEvent<'_>),
    ) -> bool {
        match &mut self.streams {
            [to_server, to_client] => match direction {
                Direction::ToServer => to_server.on_datagram(datagram, counters, out),
                Direction::ToClient => to_client.on_datagram(datagram, counters, out),
            },
        }
    }

    /// Whether either direction dropped a handshake message at a cap.
    pub fn is_truncated(&self) -> bool {
        self.streams.iter().any(DtlsStream::is_truncated)
    }

    /// Bytes held across both directions.
    pub fn buffered_bytes(&self) -> usize {
        self.streams.iter().map(DtlsStream::buffered_bytes).sum()
    }
}
