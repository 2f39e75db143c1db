//! What a connection that is not TLS carries, from the first bytes each side
//! sent: enough to name the protocol and to see a STARTTLS offer that was
//! never taken or a PostgreSQL SSLRequest that was refused.

/// A plaintext application protocol recognised by content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaintextProtocol {
    Http1,
    Http2,
    Smtp,
    Imap,
    Pop3,
    Postgres,
    Ssh,
    Ftp,
    Ldap,
    Mysql,
    Rdp,
    Xmpp,
    HttpConnect,
    Socks,
    Irc,
    Unknown,
}

impl PlaintextProtocol {
    /// ECS `network.protocol` value.
    pub fn as_str(self) -> &'static str {
        match self {
            PlaintextProtocol::Http1 => "http",
            PlaintextProtocol::Http2 => "http2",
            PlaintextProtocol::Smtp => "smtp",
            PlaintextProtocol::Imap => "imap",
            PlaintextProtocol::Pop3 => "pop3",
            PlaintextProtocol::Postgres => "postgresql",
            PlaintextProtocol::Ssh => "ssh",
            PlaintextProtocol::Ftp => "ftp",
            PlaintextProtocol::Ldap => "ldap",
            PlaintextProtocol::Mysql => "mysql",
            PlaintextProtocol::Rdp => "rdp",
            PlaintextProtocol::Xmpp => "xmpp",
            PlaintextProtocol::HttpConnect => "http-connect",
            PlaintextProtocol::Socks => "socks",
            PlaintextProtocol::Irc => "irc",
            PlaintextProtocol::Unknown => "unknown",
        }
    }

    /// Whether the protocol has an in-band upgrade to TLS.
    pub fn has_starttls(self) -> bool {
        matches!(
            self,
            PlaintextProtocol::Smtp | PlaintextProtocol::Imap | PlaintextProtocol::Pop3
        )
    }
}

/// Facts about a plaintext conversation's opening.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaintextFacts {
    pub protocol: PlaintextProtocol,
    /// The server advertised STARTTLS / STLS in its capabilities.
    pub starttls_offered: bool,
    /// The client asked for it.
    pub starttls_requested: bool,
    /// PostgreSQL: the server's one-byte answer to an SSLRequest ('S' or 'N').
    pub postgres_ssl_answer: Option<u8>,
    /// First request or greeting line, printable and capped, for evidence.
    pub first_line: String,
}

/// PostgreSQL SSLRequest (protocol docs §55.2.10): length 8, code 80877103.
const POSTGRES_SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// Gssencrequest is the same shape with code 80877104; treat it like SSLRequest.
const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HTTP_METHODS: [&[u8]; 9] = [
    b"GET ",
    b"POST ",
    b"PUT ",
    b"HEAD ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"CONNECT ",
    b"TRACE ",
];

fn contains_ignore_case(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

/// Whether the client sent `command` as a command line (not merely the word
/// inside a message body): the line is the command, optionally with
/// arguments, after an IMAP-style tag when `tagged`.
fn client_command(client: &[u8], command: &[u8], tagged: bool) -> bool {
    client.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = if tagged {
            match line.iter().position(|&b| b == b' ') {
                Some(space) => &line[space + 1..],
                None => return false,
            }
        } else {
            line
        };
        rest.len() >= command.len()
            && rest[..command.len()].eq_ignore_ascii_case(command)
            && rest.get(command.len()).is_none_or(|&b| b == b' ')
    })
}

fn first_line(bytes: &[u8]) -> String {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    // Unprintable bytes at the end are noise (CR, binary); a real full stop stays.
    let printable = |b: &u8| (0x20..0x7f).contains(b);
    let end = line.iter().rposition(printable).map_or(0, |at| at + 1);
    line[..end]
        .iter()
        .take(120)
        .map(|&b| {
            if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '.'
            }
        })
        .collect::<String>()
}

/// Classifies a conversation from the first bytes of each side.
pub fn classify(client: &[u8], server: &[u8]) -> PlaintextFacts {
    let mut facts = PlaintextFacts {
        protocol: PlaintextProtocol::Unknown,
        starttls_offered: false,
        starttls_requested: false,
        postgres_ssl_answer: None,
        first_line: first_line(if client.is_empty() { server } else { client }),
    };
    if client.starts_with(&POSTGRES_SSL_REQUEST) {
        facts.protocol = PlaintextProtocol::Postgres;
        facts.starttls_requested = true;
        facts.postgres_ssl_answer = server.first().copied();
        facts.first_line = "SSLRequest".to_string();
        return facts;
    }
    // PostgreSQL StartupMessage: length, protocol 3.0.
    if client.len() >= 8 && client[4..8] == [0, 3, 0, 0] {
        facts.protocol = PlaintextProtocol::Postgres;
        facts.first_line = "StartupMessage".to_string();
        return facts;
    }
    if client.starts_with(b"CONNECT ") {
        facts.protocol = PlaintextProtocol::HttpConnect;
        facts.starttls_requested = true;
        return facts;
    }
    if client.starts_with(HTTP2_PREFACE) {
        facts.protocol = PlaintextProtocol::Http2;
        return facts;
    }
    if HTTP_METHODS.iter().any(|method| client.starts_with(method))
        || server.starts_with(b"HTTP/1.")
    {
        facts.protocol = PlaintextProtocol::Http1;
        return facts;
    }
    if client.starts_with(b"SSH-") || server.starts_with(b"SSH-") {
        facts.protocol = PlaintextProtocol::Ssh;
        return facts;
    }
    if server.starts_with(b"220")
        && (contains_ignore_case(server, b"smtp")
            || contains_ignore_case(client, b"HELO")
            || contains_ignore_case(client, b"EHLO"))
    {
        facts.protocol = PlaintextProtocol::Smtp;
        facts.first_line = first_line(server);
        facts.starttls_offered = contains_ignore_case(server, b"250-STARTTLS")
            || contains_ignore_case(server, b"250 STARTTLS");
        facts.starttls_requested = client_command(client, b"STARTTLS", false);
        return facts;
    }
    if server.starts_with(b"220") && contains_ignore_case(server, b"ftp") {
        facts.protocol = PlaintextProtocol::Ftp;
        facts.first_line = first_line(server);
        facts.starttls_requested = client_command(client, b"AUTH TLS", false)
            || client_command(client, b"AUTH SSL", false);
        return facts;
    }
    if server.starts_with(b"* OK") || server.starts_with(b"* PREAUTH") {
        facts.protocol = PlaintextProtocol::Imap;
        facts.first_line = first_line(server);
        facts.starttls_offered = contains_ignore_case(server, b"STARTTLS");
        facts.starttls_requested = client_command(client, b"STARTTLS", true);
        return facts;
    }
    // LDAP: a BER SEQUENCE whose extended request names StartTLS (RFC 4511 §4.14).
    if client.first() == Some(&0x30) && contains_ignore_case(client, b"1.3.6.1.4.1.1466.20037") {
        facts.protocol = PlaintextProtocol::Ldap;
        facts.starttls_requested = true;
        facts.first_line = "ExtendedRequest StartTLS".to_string();
        return facts;
    }
    // MySQL: the server speaks first, protocol version 10, sequence id 0.
    if server.len() > 5 && server[3] == 0 && server[4] == 0x0a {
        facts.protocol = PlaintextProtocol::Mysql;
        facts.first_line = first_line(&server[5..]);
        return facts;
    }
    // RDP: a TPKT (version 3) with an X.224 connection request (0xe0).
    if client.len() > 5 && client[0] == 3 && client[1] == 0 && client[5] == 0xe0 {
        facts.protocol = PlaintextProtocol::Rdp;
        facts.first_line = "X.224 Connection Request".to_string();
        return facts;
    }
    if client.starts_with(b"<?xml") || client.starts_with(b"<stream:stream") {
        facts.protocol = PlaintextProtocol::Xmpp;
        facts.starttls_offered = contains_ignore_case(server, b"<starttls");
        facts.starttls_requested = contains_ignore_case(client, b"<starttls");
        facts.first_line = "<stream:stream>".to_string();
        return facts;
    }
    // SOCKS 4 (CONNECT) or 5 (version 5, a few methods).
    if matches!(client, [0x04, 0x01, ..]) || matches!(client, [0x05, 1..=9, ..]) {
        facts.protocol = PlaintextProtocol::Socks;
        facts.first_line = format!("SOCKS{}", client[0]);
        return facts;
    }
    if client.starts_with(b"NICK ") || client.starts_with(b"CAP LS") || server.starts_with(b":") {
        facts.protocol = PlaintextProtocol::Irc;
        facts.starttls_requested = client_command(client, b"STARTTLS", false);
        return facts;
    }
    if server.starts_with(b"+OK") {
        facts.protocol = PlaintextProtocol::Pop3;
        facts.first_line = first_line(server);
        facts.starttls_offered = contains_ignore_case(server, b"\nSTLS");
        facts.starttls_requested = client_command(client, b"STLS", false);
        return facts;
    }
    facts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_is_a_line_not_a_word_in_a_message() {
        let body = b"EHLO x\r\nMAIL FROM:<a@b>\r\nDATA\r\nSubject: enable STARTTLS\r\n";
        assert!(!client_command(body, b"STARTTLS", false));
        assert!(client_command(
            b"EHLO x\r\nstarttls\r\n",
            b"STARTTLS",
            false
        ));
        assert!(client_command(
            b"a1 CAPABILITY\r\na2 STARTTLS\r\n",
            b"STARTTLS",
            true
        ));
        assert!(!client_command(
            b"a1 LOGIN STARTTLS x\r\n",
            b"STARTTLS",
            true
        ));
        assert!(client_command(b"AUTH TLS\r\n", b"AUTH TLS", false));
        assert!(!client_command(b"STLSX\r\n", b"STLS", false));
        assert_eq!(first_line(b"+OK ready.\r\n"), "+OK ready.");
    }

    #[test]
    fn http_requests_and_the_http2_preface_are_named() {
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", b"").protocol,
            PlaintextProtocol::Http1
        );
        assert_eq!(
            classify(b"GET / HTTP/1.1\r\n", b"").first_line,
            "GET / HTTP/1.1"
        );
        assert_eq!(
            classify(HTTP2_PREFACE, b"").protocol,
            PlaintextProtocol::Http2
        );
    }

    #[test]
    fn smtp_that_offers_starttls_but_never_uses_it_is_seen() {
        let server = b"220 mail.internal ESMTP Postfix\r\n250-mail.internal\r\n250-STARTTLS\r\n250 8BITMIME\r\n";
        let facts = classify(b"EHLO client\r\nMAIL FROM:<a@b>\r\n", server);
        assert_eq!(facts.protocol, PlaintextProtocol::Smtp);
        assert!(facts.starttls_offered);
        assert!(!facts.starttls_requested);
        assert_eq!(facts.first_line, "220 mail.internal ESMTP Postfix");
    }

    #[test]
    fn imap_and_pop3_greetings_are_named() {
        let imap = classify(
            b"a1 CAPABILITY\r\n",
            b"* OK [CAPABILITY IMAP4rev1 STARTTLS] ready\r\n",
        );
        assert_eq!(imap.protocol, PlaintextProtocol::Imap);
        assert!(imap.starttls_offered);
        let pop = classify(
            b"CAPA\r\n",
            b"+OK POP3 ready\r\n+OK\r\nUSER\r\nSTLS\r\n.\r\n",
        );
        assert_eq!(pop.protocol, PlaintextProtocol::Pop3);
        assert!(pop.starttls_offered);
        assert!(!pop.starttls_requested);
    }

    #[test]
    fn postgres_ssl_request_answer_is_kept() {
        let facts = classify(&POSTGRES_SSL_REQUEST, b"N");
        assert_eq!(facts.protocol, PlaintextProtocol::Postgres);
        assert_eq!(facts.postgres_ssl_answer, Some(b'N'));
    }

    #[test]
    fn binary_noise_is_unknown() {
        let facts = classify(&[0, 1, 2, 0xff, 0xfe], &[]);
        assert_eq!(facts.protocol, PlaintextProtocol::Unknown);
        assert_eq!(
            facts.first_line, "",
            "unprintable bytes leave no evidence text"
        );
    }
}

/// Where a TLS ClientHello record starts inside `bytes`, for connections that
/// switch to TLS after a plaintext preamble (STARTTLS, SSLRequest, CONNECT,
/// SOCKS, MySQL's SSL request, RDP negotiation). Only the first 512 bytes are
/// searched, and the record and handshake lengths must agree, so plaintext
/// that happens to contain 0x16 0x03 is not taken for TLS.
pub fn find_client_hello(bytes: &[u8]) -> Option<usize> {
    let limit = bytes.len().min(512);
    (0..limit).find(|&at| {
        let rest = &bytes[at..];
        if rest.len() < 9 || !super::starts_like_client_hello(rest) || rest[0] != 0x16 {
            return false;
        }
        let record = usize::from(u16::from_be_bytes([rest[3], rest[4]]));
        let message =
            (usize::from(rest[6]) << 16) | (usize::from(rest[7]) << 8) | usize::from(rest[8]);
        (40..=16_384).contains(&record)
            && message >= 38
            && (message + 4 == record || (record == 16_384 && message + 4 > record))
    })
}

#[cfg(test)]
mod preamble_tests {
    use super::*;

    #[test]
    fn client_hello_is_found_after_a_preamble_and_not_in_text() {
        let mut bytes = b"\x00\x00\x00\x08\x04\xd2\x16\x2f".to_vec();
        let at = bytes.len();
        bytes.extend_from_slice(&[0x16, 0x03, 0x01, 0x00, 0x45, 0x01, 0x00, 0x00, 0x41]);
        bytes.resize(at + 5 + 0x45, 0);
        assert_eq!(find_client_hello(&bytes), Some(at));
        assert_eq!(
            find_client_hello(b"220 mail ESMTP \x16\x03\x01 ready\r\n"),
            None
        );
        // Lengths that disagree are not a ClientHello.
        assert_eq!(
            find_client_hello(&[0x16, 0x03, 0x01, 0x00, 0x45, 0x01, 0x00, 0x10, 0x00, 0, 0]),
            None
        );
    }

    #[test]
    fn preambles_are_named() {
        assert_eq!(
            classify(b"CONNECT api:443 HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n").protocol,
            PlaintextProtocol::HttpConnect
        );
        assert_eq!(
            classify(&[5, 1, 0], &[5, 0]).protocol,
            PlaintextProtocol::Socks
        );
        assert_eq!(
            classify(&[3, 0, 0, 19, 14, 0xe0, 0, 0], &[]).protocol,
            PlaintextProtocol::Rdp
        );
        assert_eq!(
            classify(&[], &[0x4a, 0, 0, 0, 0x0a, b'8', b'.', b'0']).protocol,
            PlaintextProtocol::Mysql
        );
    }
}
