//! The baseline for `scripts/bench.sh`: a bare libpcap read loop that touches
//! every packet and nothing else. tlstap's throughput is quoted against it.

fn main() {
    let path = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: pcap_loop FILE");
        std::process::exit(2);
    });
    let mut capture = match pcap::Capture::from_file(&path) {
        Ok(capture) => capture,
        Err(error) => {
            eprintln!("pcap_loop: {path}: {error}");
            std::process::exit(1);
        }
    };
    let (mut packets, mut bytes, mut checksum) = (0u64, 0u64, 0u8);
    while let Ok(packet) = capture.next_packet() {
        packets += 1;
        bytes += packet.data.len() as u64;
        checksum ^= packet.data.first().copied().unwrap_or(0);
    }
    println!("{packets} packets {bytes} bytes ({checksum})");
}
