//! Addresses as text, without `Display`'s formatter machinery for IPv4:
//! records and findings write several per session, and `Display` for an
//! IPv4 socket address cost about 1,600 instructions.

use std::net::{IpAddr, SocketAddr};

/// Longest text: `[` + an IPv6 address (at most 45) + `%` + a scope id (10)
/// + `]:65535`: 64 holds it.
const CAPACITY: usize = 64;

/// An address's text, on the stack; exactly what `Display` writes.
#[derive(Clone, Copy)]
pub struct AddrText {
    bytes: [u8; CAPACITY],
    len: usize,
}

impl AddrText {
    pub fn ip(ip: IpAddr) -> Self {
        let mut text = Self::empty();
        match ip {
            IpAddr::V4(v4) => text.push_v4(v4.octets()),
            IpAddr::V6(_) => text.push_display(&ip),
        }
        text
    }

    pub fn socket(addr: SocketAddr) -> Self {
        let mut text = Self::empty();
        match addr {
            SocketAddr::V4(v4) => {
                text.push_v4(v4.ip().octets());
                text.push(b':');
                text.push_decimal(u32::from(v4.port()));
            }
            SocketAddr::V6(_) => text.push_display(&addr),
        }
        text
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits, dots, colons, brackets and `Display`'s own
        // (UTF-8) text are ever pushed.
        std::str::from_utf8(self.bytes.get(..self.len).unwrap_or_default()).unwrap_or_default()
    }

    fn empty() -> Self {
        Self {
            bytes: [0; CAPACITY],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn push_decimal(&mut self, value: u32) {
        let mut digits = [0u8; 10];
        let mut at = digits.len();
        let mut rest = value;
        loop {
            at -= 1;
            digits[at] = b'0' + (rest % 10) as u8;
            rest /= 10;
            if rest == 0 {
                break;
            }
        }
        for &digit in &digits[at..] {
            self.push(digit);
        }
    }

    fn push_v4(&mut self, octets: [u8; 4]) {
        for (i, octet) in octets.into_iter().enumerate() {
            if i > 0 {
                self.push(b'.');
            }
            self.push_decimal(u32::from(octet));
        }
    }

    /// IPv6 keeps `Display` (zero compression, embedded IPv4 forms).
    fn push_display(&mut self, value: &dyn std::fmt::Display) {
        use std::io::Write;
        let mut cursor = std::io::Cursor::new(&mut self.bytes[..]);
        if write!(cursor, "{value}").is_ok() {
            self.len = cursor.position() as usize;
        }
    }
}

impl std::fmt::Display for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for AddrText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for AddrText {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        for text in [
            "0.0.0.0",
            "10.1.0.20",
            "192.168.100.9",
            "255.255.255.255",
            "1.20.199.100",
            "2001:db8::1",
            "::ffff:10.0.0.1",
            "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255",
        ] {
            let ip: IpAddr = text.parse().expect("address");
            assert_eq!(AddrText::ip(ip).as_str(), ip.to_string());
            for port in [0, 7, 443, 8080, 65535] {
                let socket = SocketAddr::new(ip, port);
                assert_eq!(AddrText::socket(socket).as_str(), socket.to_string());
            }
        }
        let scoped = SocketAddr::V6(std::net::SocketAddrV6::new(
            "1111:2222:3333:4444:5555:6666:7777:8888"
                .parse()
                .expect("v6"),
            65535,
            0,
            u32::MAX,
        ));
        assert_eq!(AddrText::socket(scoped).as_str(), scoped.to_string());
    }

    #[test]
    fn serialises_as_a_json_string() {
        let ip: IpAddr = "10.0.0.1".parse().expect("address");
        assert_eq!(
            serde_json::to_string(&AddrText::ip(ip)).expect("json"),
            "\"10.0.0.1\""
        );
    }
}
