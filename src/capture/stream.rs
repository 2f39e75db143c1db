//! The stdio stream libpcap reads a capture through, with a larger buffer.
//!
//! libpcap reads a savefile with `fread` on a `FILE`, whose default buffer is
//! the file system's block (4 KiB): one read(2) every two or three bulk
//! packets, and the per-call cost of the kernel's file read path was a tenth
//! of the reader thread on bulk traffic. With a 64 KiB buffer the same bare
//! read loop runs in about 0.6 of the time on bulk-1g; 256 KiB and more were
//! slower than the default on this machine (the buffer no longer stays in
//! the L2 cache). libpcap still does all the parsing: this only hands it a
//! `FILE` of our making (`pcap_fopen_offline`).

#![allow(unsafe_code)]

use std::ffi::{c_char, c_uint, CStr};
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::ptr::NonNull;

/// stdio buffer size for capture files and pipes.
const BUFFER: usize = 64 * 1024;
/// `PCAP_TSTAMP_PRECISION_NANO` (pcap/pcap.h).
const PRECISION_NANO: c_uint = 1;
/// `PCAP_ERRBUF_SIZE` (pcap/pcap.h).
const ERRBUF_SIZE: usize = 256;

extern "C" {
    // libpcap >= 1.5 (pcap/pcap.h); the pcap crate links libpcap already.
    fn pcap_fopen_offline_with_tstamp_precision(
        fp: *mut libc::FILE,
        precision: c_uint,
        errbuf: *mut c_char,
    ) -> *mut libc::c_void;
}

/// A heap buffer handed to stdio. Owned through a raw pointer, never through
/// a `Box` or a reference, because C writes into it behind Rust's back.
struct Buffer {
    start: NonNull<u8>,
    length: usize,
}

impl Buffer {
    fn new(length: usize) -> Self {
        let boxed: Box<[u8]> = vec![0; length].into_boxed_slice();
        let start = NonNull::from(Box::leak(boxed)).cast::<u8>();
        Self { start, length }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        let slice = std::ptr::slice_from_raw_parts_mut(self.start.as_ptr(), self.length);
        // SAFETY: `start`/`length` come from `Box::leak` of a boxed slice of
        // exactly this length in `new`, and are freed only here, once. No
        // stream uses the buffer any more: a `Stream` drops its capture (and
        // with it the `FILE`, closed by pcap_close) before its buffer.
        drop(unsafe { Box::from_raw(slice) });
    }
}

// SAFETY: `Buffer` only owns memory; nothing in Rust reads or writes it. The
// only user is the `FILE` of the capture it travels with, in the same
// `Stream`, so it is used from one thread at a time, as the capture is.
unsafe impl Send for Buffer {}

/// An offline capture and the stdio buffer it reads through.
pub struct Stream {
    /// Declared before `buffer`: fields drop in declaration order, so the
    /// `FILE` is closed before its buffer is freed.
    pub capture: pcap::Capture<pcap::Offline>,
    _buffer: Buffer,
}

/// Opens the capture that `fd` (a file at its start, or a pipe) carries;
/// libpcap takes ownership of the descriptor.
pub fn open(fd: OwnedFd) -> Result<Stream, pcap::Error> {
    let raw = fd.into_raw_fd();
    // SAFETY: `raw` was just released by an `OwnedFd`, so it is open and has no
    // other owner; on success the `FILE` owns it (closed by fclose), on
    // failure it is taken back below and closed once.
    let fp = unsafe { libc::fdopen(raw, c"rb".as_ptr()) };
    if fp.is_null() {
        let error = std::io::Error::last_os_error();
        // SAFETY: fdopen failed, so `raw` is still ours alone (see above).
        drop(unsafe { OwnedFd::from_raw_fd(raw) });
        return Err(pcap::Error::PcapError(error.to_string()));
    }
    let buffer = Buffer::new(BUFFER);
    // SAFETY: `fp` is a valid stream on which no I/O has happened yet (setvbuf
    // must come first); the buffer is `BUFFER` bytes and outlives the stream
    // (see `Stream`). A failure leaves stdio's own buffer in place: harmless.
    unsafe {
        libc::setvbuf(fp, buffer.start.as_ptr().cast(), libc::_IOFBF, BUFFER);
    }
    let mut errbuf = [0 as c_char; ERRBUF_SIZE];
    // SAFETY: `fp` is a valid read stream and `errbuf` has the
    // PCAP_ERRBUF_SIZE bytes libpcap may write (NUL-terminated).
    let handle = unsafe {
        pcap_fopen_offline_with_tstamp_precision(fp, PRECISION_NANO, errbuf.as_mut_ptr())
    };
    match NonNull::new(handle) {
        // The pcap crate's handle type: pcap_close (on drop) closes the stream.
        Some(handle) => Ok(Stream {
            capture: pcap::Capture::from(handle.cast()),
            _buffer: buffer,
        }),
        None => {
            // SAFETY: on failure libpcap leaves the stream open and does not
            // keep it (pcap_open_offline closes it itself in this case);
            // `errbuf` holds a NUL-terminated message.
            let message = unsafe {
                libc::fclose(fp);
                CStr::from_ptr(errbuf.as_ptr())
            };
            Err(pcap::Error::PcapError(
                message.to_string_lossy().into_owned(),
            ))
        }
    }
}
