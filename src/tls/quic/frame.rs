//! Frames of a decrypted Initial packet (RFC 9000 §12.4, §19). Only the five
//! types an Initial may carry are understood; anything else ends the walk,
//! because without knowing a frame's layout its end cannot be found.

use super::packet::read_varint;
use super::QuicError;

/// Largest stream offset QUIC allows (RFC 9000 §19.6: offset + length < 2^62).
const MAX_STREAM_OFFSET: u64 = (1 << 62) - 1;

/// A frame allowed in an Initial packet; opaque parts stay borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    /// A run of PADDING bytes (0x00), collapsed into one item.
    Padding,
    Ping,
    Ack,
    Crypto {
        offset: u64,
        data: &'a [u8],
    },
    ConnectionClose,
}

/// Iterator over the frames of a payload. After the first error it yields
/// nothing more.
#[derive(Debug, Clone)]
pub struct Frames<'a> {
    payload: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> Frames<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            payload,
            position: 0,
            failed: false,
        }
    }

    fn varint(&mut self) -> Result<u64, QuicError> {
        read_varint(self.payload, &mut self.position).ok_or(QuicError::BadFrame)
    }

    fn skip(&mut self, length: u64) -> Result<&'a [u8], QuicError> {
        let end = usize::try_from(length)
            .ok()
            .and_then(|length| self.position.checked_add(length))
            .ok_or(QuicError::BadFrame)?;
        let bytes = self
            .payload
            .get(self.position..end)
            .ok_or(QuicError::BadFrame)?;
        self.position = end;
        Ok(bytes)
    }

    fn next_frame(&mut self) -> Result<Frame<'a>, QuicError> {
        let frame_type = self.varint()?;
        match frame_type {
            0x00 => {
                while self.payload.get(self.position) == Some(&0) {
                    self.position += 1;
                }
                Ok(Frame::Padding)
            }
            0x01 => Ok(Frame::Ping),
            // ACK (RFC 9000 §19.3): largest, delay, range count, first range,
            // then (gap, length) pairs, then three ECN counts for 0x03.
            0x02 | 0x03 => {
                self.varint()?;
                self.varint()?;
                let ranges = self.varint()?;
                self.varint()?;
                // Each range consumes at least two bytes, so a huge count
                // fails on the payload's end instead of looping on.
                for _ in 0..ranges {
                    self.varint()?;
                    self.varint()?;
                }
                if frame_type == 0x03 {
                    for _ in 0..3 {
                        self.varint()?;
                    }
                }
                Ok(Frame::Ack)
            }
            // CRYPTO (RFC 9000 §19.6).
            0x06 => {
                let offset = self.varint()?;
                let length = self.varint()?;
                if offset.saturating_add(length) > MAX_STREAM_OFFSET {
                    return Err(QuicError::BadFrame);
                }
                let data = self.skip(length)?;
                Ok(Frame::Crypto { offset, data })
            }
            // CONNECTION_CLOSE (RFC 9000 §19.19): 0x1c carries the offending
            // frame type, 0x1d (application) does not.
            0x1c | 0x1d => {
                self.varint()?;
                if frame_type == 0x1c {
                    self.varint()?;
                }
                let reason_length = self.varint()?;
                self.skip(reason_length)?;
                Ok(Frame::ConnectionClose)
            }
            _ => Err(QuicError::UnexpectedFrame),
        }
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>, QuicError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.payload.len() {
            return None;
        }
        let frame = self.next_frame();
        self.failed = frame.is_err();
        Some(frame)
    }
}
