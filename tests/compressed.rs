//! Compressed captures (issue #12): gzip and zstd files and stdin are read as
//! the capture inside them, told by magic bytes; a broken stream is a one-line
//! error after the records seen before it.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use support::*;

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}

fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).expect("zstd")
}

/// The session records of a run (stats left out), as text: equal runs give
/// equal strings.
fn sessions(args: &[&str]) -> (i32, Vec<String>, String) {
    let (code, records, stderr) = run_tlstap(args);
    let records = records.iter().map(ToString::to_string).collect();
    (code, records, stderr)
}

/// Runs `tlstap read -q -` with `input` on stdin.
fn read_stdin(input: &[u8]) -> (bool, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["read", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("wait");
    writer.join().expect("writer").expect("write stdin");
    let lines = String::from_utf8(output.stdout)
        .expect("utf-8")
        .lines()
        .filter(|line| !line.contains("\"tlstap.stats\""))
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .expect("json")
                .to_string()
        })
        .collect();
    (output.status.success(), lines)
}

#[test]
fn gzip_and_zstd_files_give_the_records_of_the_plain_file() {
    let dir = temp_dir();
    let plain = sample("stacks.pcap");
    let bytes = std::fs::read(&plain).expect("read");
    let (code, expected, _) = sessions(&["read", "-q", plain.to_str().expect("p")]);
    assert_eq!(code, 0);
    assert_eq!(expected.len(), 39, "samples/stacks.pcap holds 39 sessions");
    for (name, packed) in [
        ("stacks.pcap.gz", gzip(&bytes)),
        ("stacks.pcap.zst", zstd(&bytes)),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, packed).expect("write");
        let (code, records, stderr) = sessions(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 0, "{name}: {stderr}");
        assert_eq!(records, expected, "{name}");
    }
    // pcapng inside gzip.
    let pcapng = std::fs::read(sample("tls13.pcapng")).expect("read");
    let path = dir.path().join("tls13.pcapng.gz");
    std::fs::write(&path, gzip(&pcapng)).expect("write");
    let (code, records, _) = sessions(&["read", "-q", path.to_str().expect("p")]);
    let (_, expected, _) = sessions(&["read", "-q", sample("tls13.pcapng").to_str().expect("p")]);
    assert_eq!(code, 0);
    assert_eq!(records, expected);
}

#[test]
fn the_format_is_told_by_magic_bytes_not_by_the_file_name() {
    let dir = temp_dir();
    let bytes = std::fs::read(sample("tls13.pcap")).expect("read");
    let (_, expected, _) = sessions(&["read", "-q", sample("tls13.pcap").to_str().expect("p")]);
    let gzip_named_pcap = dir.path().join("capture.pcap");
    std::fs::write(&gzip_named_pcap, gzip(&bytes)).expect("write");
    let pcap_named_gz = dir.path().join("capture.pcap.gz");
    std::fs::write(&pcap_named_gz, &bytes).expect("write");
    let zstd_named_txt = dir.path().join("capture.txt");
    std::fs::write(&zstd_named_txt, zstd(&bytes)).expect("write");
    for path in [gzip_named_pcap, pcap_named_gz, zstd_named_txt] {
        let (code, records, stderr) = sessions(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 0, "{}: {stderr}", path.display());
        assert_eq!(records, expected, "{}", path.display());
    }
}

#[test]
fn compressed_and_plain_stdin_are_read() {
    let bytes = std::fs::read(sample("tls12-client-cert.pcap")).expect("read");
    let (ok, plain) = read_stdin(&bytes);
    assert!(ok);
    assert_eq!(plain.len(), 1);
    for packed in [gzip(&bytes), zstd(&bytes)] {
        let (ok, records) = read_stdin(&packed);
        assert!(ok);
        assert_eq!(records, plain);
    }
}

#[test]
fn a_gzip_file_of_several_members_is_read_whole() {
    // Rotation tools may append members; `gzip -d` reads them all, and so must we.
    let bytes = std::fs::read(sample("tls13.pcap")).expect("read");
    let mut packed = gzip(&bytes[..5000]);
    packed.extend(gzip(&bytes[5000..]));
    let dir = temp_dir();
    let path = dir.path().join("members.pcap.gz");
    std::fs::write(&path, packed).expect("write");
    let (code, records, stderr) = sessions(&["read", "-q", path.to_str().expect("p")]);
    let (_, expected, _) = sessions(&["read", "-q", sample("tls13.pcap").to_str().expect("p")]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(records, expected);
}

#[test]
fn a_cut_or_corrupt_stream_is_one_line_after_the_records_seen_before_it() {
    let dir = temp_dir();
    let bytes = std::fs::read(sample("stacks.pcap")).expect("read");
    let packed = gzip(&bytes);
    // Cut: the gzip stream stops in the middle.
    let cut = dir.path().join("cut.pcap.gz");
    std::fs::write(&cut, &packed[..packed.len() * 2 / 3]).expect("write");
    // Corrupt: a flipped byte in the deflate data (the CRC catches it at the end).
    let mut flipped = packed.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x5a;
    let corrupt = dir.path().join("corrupt.pcap.gz");
    std::fs::write(&corrupt, &flipped).expect("write");
    // A cut zstd stream.
    let zstd_packed = zstd(&bytes);
    let zstd_cut = dir.path().join("cut.pcap.zst");
    std::fs::write(&zstd_cut, &zstd_packed[..zstd_packed.len() * 2 / 3]).expect("write");
    // zstd decodes whole blocks (up to 128 KiB of output), so a cut 77 KB
    // capture yields no packet before the error.
    for (path, cause, some_records) in [
        (&cut, "compressed data ends early", true),
        (&corrupt, "compressed data is corrupt", true),
        (&zstd_cut, "compressed data ends early", false),
    ] {
        let (code, records, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
        assert_eq!(code, 1, "{}: {stderr}", path.display());
        let line = stderr.trim();
        assert_eq!(line.lines().count(), 1, "{stderr}");
        assert!(
            line.starts_with(&format!("tlstap: error: {}: ", path.display())),
            "{line}"
        );
        assert!(line.contains(cause), "{line}");
        // Sessions of the readable part are written, not all 39.
        assert!(records.len() < 39, "{}", path.display());
        assert_eq!(!records.is_empty(), some_records, "{}", path.display());
    }
}

#[test]
fn compressed_data_that_is_not_a_capture_is_named_as_such() {
    let dir = temp_dir();
    let path = dir.path().join("notes.gz");
    std::fs::write(&path, gzip(b"these are notes, not packets\n")).expect("write");
    let (code, _, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("notes.gz: cannot open: gzip data is not a pcap or pcapng file"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
}

#[test]
fn a_zstd_frame_asking_for_a_2_gib_window_is_refused_not_allocated() {
    // Frame header: magic, descriptor 0, window descriptor exponent 21
    // (2^31 bytes), then one empty raw last block.
    let frame = [0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3, 0x01, 0x00, 0x00];
    let dir = temp_dir();
    let path = dir.path().join("window.zst");
    std::fs::write(&path, frame).expect("write");
    let (code, _, stderr) = run_tlstap(&["read", "-q", path.to_str().expect("p")]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains(
            "window.zst: cannot open: compressed data is corrupt: Frame requires too much memory"
        ),
        "{stderr}"
    );
}

/// Regression (found by mutating corpus captures): a record libpcap refuses
/// early in a large gzip capture. libpcap stops reading the pipe with
/// hundreds of kilobytes still to come, so the thread feeding it is stuck
/// writing; the run used to wait for that thread forever. It must end with
/// the one-line error.
#[test]
fn regression_a_bad_record_early_in_a_large_compressed_capture_ends_the_run() {
    let dir = temp_dir();
    let bytes = std::fs::read(sample("stacks.pcap")).expect("read");
    // The records five times over (~380 KB): far more than a pipe holds.
    let (header, records) = bytes.split_at(24);
    let mut capture = header.to_vec();
    for _ in 0..5 {
        capture.extend_from_slice(records);
    }
    // The first record's captured length (bytes 8..12 of its header, little
    // endian) far beyond the snaplen.
    capture[24 + 8..24 + 12].copy_from_slice(&0x2ac0_0000u32.to_le_bytes());
    let path = dir.path().join("bad-record.pcap.gz");
    std::fs::write(&path, gzip(&capture)).expect("write");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["read", "-q", "-o", "/dev/null", path.to_str().expect("p")])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("tlstap still running after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    let line = stderr.trim();
    assert_eq!(line.lines().count(), 1, "{stderr}");
    assert!(
        line.starts_with(&format!("tlstap: error: {}: ", path.display()))
            && line.contains("invalid packet capture length"),
        "{line}"
    );
}

/// A read blocked on a silent stdin cannot reach its next stop check: the
/// first SIGTERM asks for a clean stop and changes nothing yet; a second one
/// ends the process at once (143 = 128 + SIGTERM).
#[test]
fn a_second_sigterm_ends_a_read_blocked_on_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlstap"))
        .args(["read", "-q", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kept open and silent until the end of the test.
    let _stdin = child.stdin.take().expect("stdin");
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    let wait_exit = |child: &mut std::process::Child, within: std::time::Duration| {
        let started = std::time::Instant::now();
        while started.elapsed() < within {
            if let Some(status) = child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    };
    // Let it install its handlers and block on the read.
    assert!(wait_exit(&mut child, std::time::Duration::from_secs(1)).is_none());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    assert!(
        wait_exit(&mut child, std::time::Duration::from_millis(300)).is_none(),
        "the first SIGTERM waits for the read"
    );
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
    let status = wait_exit(&mut child, std::time::Duration::from_secs(10));
    if status.is_none() {
        let _ = child.kill();
    }
    assert_eq!(status.and_then(|s| s.code()), Some(143));
}
