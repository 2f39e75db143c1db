//! TLS-stack identification: JA4 `b`/`c` (cipher hash, extension and
//! signature-algorithm hash) → the library that sent the ClientHello.
//!
//! The built-in catalog is `data/tls-stacks.toml`, written by
//! `scripts/make-fingerprints.sh` from real ClientHellos of the stacks a
//! Debian machine runs (`samples/stacks.pcap`). The JA4 `a` part is ignored:
//! it carries SNI, ALPN and counts, which change with how a program calls its
//! library, while `b` and `c` are what the library itself sorts and sends.
//! Users add entries (policy file) through [`StackCatalog::extend`]; theirs win.
//!
//! The catalog is parsed once; [`StackCatalog::identify`] is two hash lookups
//! on fixed-size keys and allocates nothing. Sessions are matched with
//! [`StackCatalog::identify_hello`], which leaves out the extensions only a
//! resumption adds, so a client's resumed handshakes name the same stack as
//! its full ones (the catalog holds full handshakes).

use std::collections::HashMap;

use serde::Deserialize;
use toml::Spanned;

use super::{ja4, Carrier};
use crate::tls::summary::{ClientHelloSummary, HandshakeSummary};

/// Extensions a client sends only when it resumes with a PSK: pre_shared_key
/// (41, RFC 8446 §4.2.11) and early_data (42, §4.2.10). They change JA4 `c`
/// but say nothing about the library that sent them.
const RESUMPTION_EXTENSIONS: [u16; 2] = [41, 42];

/// Length of the JA4 `b` and `c` parts: 12 lowercase hex characters.
const HASH_LENGTH: usize = 12;

type Hash = [u8; HASH_LENGTH];

/// One known stack: a (ja4_b, ja4_c) pair and who sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackEntry {
    /// The TLS library (`openssl`, `gnutls`, `nss`, `java`, `node`, `go`,
    /// `rustls`); libraries that collide on b/c are all named, joined by " / ".
    pub name: String,
    /// major.minor as the library's tool reports it.
    pub version: String,
    /// Programs seen sending this fingerprint (informational).
    pub clients: Vec<String>,
    pub ja4_b: String,
    pub ja4_c: String,
}

/// Why a stacks file (built-in or the user's) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StackError {
    /// Not TOML, a missing field, a wrong type or an unknown key; the message
    /// from the TOML parser names the line and column.
    #[error("stacks file: {0}")]
    Syntax(String),
    /// A field holds an impossible value.
    #[error("stacks file line {line}: stack {name:?}: {message}")]
    Invalid {
        line: usize,
        name: String,
        message: String,
    },
    /// Two entries of the same file claim the same (ja4_b, ja4_c): the file
    /// would give different answers depending on its order.
    #[error(
        "stacks file line {line}: stack {name:?} repeats ja4_b/ja4_c {ja4_b}_{ja4_c} \
         of stack {first_name:?} (line {first_line})"
    )]
    Duplicate {
        line: usize,
        name: String,
        first_line: usize,
        first_name: String,
        ja4_b: String,
        ja4_c: String,
    },
}

/// How strongly a session matched a catalog entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchBasis {
    /// Both the cipher hash and the extension hash are equal to an entry's.
    Ja4Bc,
    /// Only the extension/signature-algorithm hash `c` is known, and every
    /// entry with that `c` names the same stack and version. This is the
    /// library with a program-chosen cipher list (`curl --ciphers`,
    /// a Python `set_ciphers`): the library builds the extensions, the program
    /// picks the ciphers. Weaker, so it is reported as such.
    Ja4C,
}

impl MatchBasis {
    /// The value written to records next to the stack.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ja4Bc => "ja4_bc",
            Self::Ja4C => "ja4_c",
        }
    }
}

/// The answer for one ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StackMatch<'a> {
    Known {
        name: &'a str,
        version: &'a str,
        basis: MatchBasis,
    },
    Unknown,
}

impl StackMatch<'_> {
    /// `"openssl 3.0"`, or `"unknown"`: the record's `tlstap.client.stack`.
    pub fn label(&self) -> String {
        match self {
            Self::Known { name, version, .. } => format!("{name} {version}"),
            Self::Unknown => "unknown".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Builtin,
    User,
}

/// Where the `c`-only lookup leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByC {
    One(usize, Origin),
    /// Entries with this `c` disagree on the stack: no `c`-only answer.
    Ambiguous(Origin),
}

/// Known stacks, indexed for [`StackCatalog::identify`].
#[derive(Debug, Clone, Default)]
pub struct StackCatalog {
    entries: Vec<(StackEntry, Origin)>,
    by_bc: HashMap<(Hash, Hash), usize>,
    by_c: HashMap<Hash, ByC>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    stack: Vec<RawEntry>,
}

/// A policy file: its `[[stack]]` tables, every other key left to the policy
/// parser.
#[derive(Debug, Deserialize)]
struct RawPolicyStacks {
    #[serde(default)]
    stack: Vec<RawEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: Spanned<String>,
    version: String,
    #[serde(default)]
    clients: Vec<String>,
    ja4_b: Spanned<String>,
    ja4_c: Spanned<String>,
    // Informational, written by the script; not used for matching.
    #[serde(default)]
    #[allow(dead_code)]
    variations: Vec<String>,
    #[serde(default)]
    #[allow(dead_code)]
    ja4: Vec<String>,
}

static BUILTIN: &str = include_str!("../../../data/tls-stacks.toml");

fn hash(text: &str) -> Option<Hash> {
    let bytes: Hash = text.as_bytes().try_into().ok()?;
    bytes
        .iter()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
        .then_some(bytes)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Parses and checks a document of `[[stack]]` tables (the layout of
/// `data/tls-stacks.toml`; a policy file's `[[stack]]` entries use the same
/// keys). Hashes must be 12 lowercase hex characters, names and versions
/// non-empty, and no (ja4_b, ja4_c) may appear twice.
pub fn entries_from_toml(text: &str) -> Result<Vec<StackEntry>, StackError> {
    let raw: RawFile =
        toml::from_str(text).map_err(|error| StackError::Syntax(error.to_string()))?;
    check_entries(text, raw.stack)
}

/// The `[[stack]]` entries of a policy file, checked as in
/// [`entries_from_toml`] (line numbers are the policy file's); other
/// top-level keys are ignored here, because they are the policy parser's to
/// judge. Hand the result to [`StackCatalog::extend`].
pub fn entries_in_policy(text: &str) -> Result<Vec<StackEntry>, StackError> {
    let raw: RawPolicyStacks =
        toml::from_str(text).map_err(|error| StackError::Syntax(error.to_string()))?;
    check_entries(text, raw.stack)
}

fn check_entries(text: &str, raw: Vec<RawEntry>) -> Result<Vec<StackEntry>, StackError> {
    let mut first: HashMap<(Hash, Hash), (usize, String)> = HashMap::new();
    let mut entries = Vec::with_capacity(raw.len());
    for entry in raw {
        let name = entry.name.get_ref().clone();
        let invalid = |span: std::ops::Range<usize>, message: String| StackError::Invalid {
            line: line_of(text, span.start),
            name: name.clone(),
            message,
        };
        if name.trim().is_empty() {
            return Err(invalid(entry.name.span(), "name is empty".to_string()));
        }
        if entry.version.trim().is_empty() {
            return Err(invalid(entry.name.span(), "version is empty".to_string()));
        }
        let mut parts = [Hash::default(); 2];
        for (slot, (key, value)) in parts
            .iter_mut()
            .zip([("ja4_b", &entry.ja4_b), ("ja4_c", &entry.ja4_c)])
        {
            *slot = hash(value.get_ref()).ok_or_else(|| {
                invalid(
                    value.span(),
                    format!(
                        "{key} {:?} is not {HASH_LENGTH} lowercase hex characters",
                        value.get_ref()
                    ),
                )
            })?;
        }
        let line = line_of(text, entry.ja4_b.span().start);
        if let Some((first_line, first_name)) = first.get(&(parts[0], parts[1])) {
            return Err(StackError::Duplicate {
                line,
                name,
                first_line: *first_line,
                first_name: first_name.clone(),
                ja4_b: entry.ja4_b.into_inner(),
                ja4_c: entry.ja4_c.into_inner(),
            });
        }
        first.insert((parts[0], parts[1]), (line, name.clone()));
        entries.push(StackEntry {
            name,
            version: entry.version,
            clients: entry.clients,
            ja4_b: entry.ja4_b.into_inner(),
            ja4_c: entry.ja4_c.into_inner(),
        });
    }
    Ok(entries)
}

impl StackCatalog {
    /// The catalog shipped in the binary (`data/tls-stacks.toml`). Parses the
    /// file: build it once per run and share it, never per session.
    pub fn builtin() -> Self {
        // The file is generated, and checked by the test
        // `builtin_catalog_parses_and_names_the_captured_stacks`, so a failure
        // here is a build that skipped its own tests.
        Self::from_toml(BUILTIN).expect("data/tls-stacks.toml is valid (checked by tests)")
    }

    /// A catalog from a stacks document; see [`entries_from_toml`].
    pub fn from_toml(text: &str) -> Result<Self, StackError> {
        let mut catalog = Self::default();
        catalog.insert(entries_from_toml(text)?, Origin::Builtin);
        Ok(catalog)
    }

    /// Adds the user's entries (policy file). An entry with the same
    /// (ja4_b, ja4_c) as a catalog entry replaces it, and for `c`-only
    /// matches the user's entries are consulted before the built-in ones: the
    /// user knows their estate. Entries whose hashes are not 12 hex characters
    /// cannot match anything and are skipped; read them with
    /// [`entries_in_policy`], which reports them.
    pub fn extend(&mut self, entries: Vec<StackEntry>) {
        self.insert(entries, Origin::User);
    }

    fn insert(&mut self, entries: Vec<StackEntry>, origin: Origin) {
        for mut entry in entries {
            entry.ja4_b.make_ascii_lowercase();
            entry.ja4_c.make_ascii_lowercase();
            let (Some(b), Some(c)) = (hash(&entry.ja4_b), hash(&entry.ja4_c)) else {
                continue;
            };
            match self.by_bc.get(&(b, c)) {
                Some(&index) => self.entries[index] = (entry, origin),
                None => {
                    self.by_bc.insert((b, c), self.entries.len());
                    self.entries.push((entry, origin));
                }
            }
        }
        self.rebuild_by_c();
    }

    fn rebuild_by_c(&mut self) {
        self.by_c.clear();
        for (index, (entry, origin)) in self.entries.iter().enumerate() {
            let Some(c) = hash(&entry.ja4_c) else {
                continue;
            };
            let next = match self.by_c.get(&c) {
                None => ByC::One(index, *origin),
                // A user entry outranks built-in ones with the same c.
                Some(&ByC::One(_, Origin::Builtin)) | Some(&ByC::Ambiguous(Origin::Builtin))
                    if *origin == Origin::User =>
                {
                    ByC::One(index, *origin)
                }
                Some(&ByC::One(_, Origin::User)) | Some(&ByC::Ambiguous(Origin::User))
                    if *origin == Origin::Builtin =>
                {
                    continue;
                }
                Some(&ByC::One(other, _)) => {
                    let known = &self.entries[other].0;
                    if known.name == entry.name && known.version == entry.version {
                        continue;
                    }
                    ByC::Ambiguous(*origin)
                }
                Some(&ByC::Ambiguous(_)) => continue,
            };
            self.by_c.insert(c, next);
        }
    }

    /// All entries, built-in and user, in insertion order.
    pub fn entries(&self) -> impl Iterator<Item = &StackEntry> {
        self.entries.iter().map(|(entry, _)| entry)
    }

    /// The stack that sent `hello`: [`Self::identify`] on its JA4, computed
    /// without [`RESUMPTION_EXTENSIONS`], so an OpenSSL client resuming with a
    /// PSK (`samples/resumption/`) is the OpenSSL of its full handshake, not
    /// an unknown stack. Once per session; a resumed hello is copied once.
    pub fn identify_hello(&self, hello: &ClientHelloSummary, carrier: Carrier) -> StackMatch<'_> {
        let resumed = hello
            .extensions
            .iter()
            .any(|e| RESUMPTION_EXTENSIONS.contains(e));
        let fingerprint = if resumed {
            let mut full = hello.clone();
            full.extensions
                .retain(|e| !RESUMPTION_EXTENSIONS.contains(e));
            ja4::client(&full, carrier).fingerprint
        } else {
            ja4::client(hello, carrier).fingerprint
        };
        self.identify(&fingerprint)
    }

    /// [`Self::identify_hello`] for a session's first ClientHello; `Unknown`
    /// when none was parsed.
    pub fn identify_session(&self, session: &HandshakeSummary) -> StackMatch<'_> {
        session
            .client_hello
            .as_ref()
            .map_or(StackMatch::Unknown, |hello| {
                self.identify_hello(hello, session.carrier)
            })
    }

    /// The stack for a JA4 fingerprint `a_b_c`: an exact (b, c) entry, else a
    /// `c`-only entry when that is unambiguous (see [`MatchBasis::Ja4C`]),
    /// else `Unknown`. Anything that is not a JA4 is `Unknown`.
    pub fn identify(&self, ja4: &str) -> StackMatch<'_> {
        let mut parts = ja4.split('_');
        let (Some(_), Some(b), Some(c), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return StackMatch::Unknown;
        };
        let (Some(b), Some(c)) = (hash(b), hash(c)) else {
            return StackMatch::Unknown;
        };
        let known = |index: usize, basis| {
            let entry = &self.entries[index].0;
            StackMatch::Known {
                name: &entry.name,
                version: &entry.version,
                basis,
            }
        };
        if let Some(&index) = self.by_bc.get(&(b, c)) {
            return known(index, MatchBasis::Ja4Bc);
        }
        match self.by_c.get(&c) {
            Some(&ByC::One(index, _)) => known(index, MatchBasis::Ja4C),
            _ => StackMatch::Unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = r#"
[[stack]]
name = "openssl"
version = "3.0"
clients = ["openssl s_client", "curl 7.88"]
ja4_b = "aaaaaaaaaaaa"
ja4_c = "cccccccccccc"
variations = ["default", "no-sni"]

[[stack]]
name = "gnutls"
version = "3.7"
ja4_b = "bbbbbbbbbbbb"
ja4_c = "dddddddddddd"
"#;

    fn entry(name: &str, version: &str, b: &str, c: &str) -> StackEntry {
        StackEntry {
            name: name.to_string(),
            version: version.to_string(),
            clients: Vec::new(),
            ja4_b: b.to_string(),
            ja4_c: c.to_string(),
        }
    }

    fn known(name: &'static str, version: &'static str, basis: MatchBasis) -> StackMatch<'static> {
        StackMatch::Known {
            name,
            version,
            basis,
        }
    }

    #[test]
    fn valid_file_identifies_on_b_and_c_ignoring_a() {
        let catalog = StackCatalog::from_toml(TWO).unwrap();
        assert_eq!(catalog.entries().count(), 2);
        assert_eq!(
            catalog.entries().next().unwrap().clients,
            ["openssl s_client", "curl 7.88"]
        );
        let expected = known("openssl", "3.0", MatchBasis::Ja4Bc);
        assert_eq!(
            catalog.identify("t13d1812h2_aaaaaaaaaaaa_cccccccccccc"),
            expected
        );
        // SNI, ALPN and counts live in `a`; they do not change the answer.
        assert_eq!(
            catalog.identify("t13i180900_aaaaaaaaaaaa_cccccccccccc"),
            expected
        );
        assert_eq!(
            catalog
                .identify("t12d0000h1_bbbbbbbbbbbb_dddddddddddd")
                .label(),
            "gnutls 3.7"
        );
    }

    /// A ClientHello like OpenSSL 3.0's default, and the catalog entry for it.
    fn openssl_hello() -> (ClientHelloSummary, StackCatalog) {
        let hello = ClientHelloSummary {
            legacy_version: 0x0303,
            cipher_suites: vec![0x1302, 0x1303, 0x1301, 0xc02c, 0xc030, 0x00ff],
            extensions: vec![0, 11, 10, 35, 22, 23, 13, 43, 45, 51],
            supported_versions: vec![0x0304, 0x0303],
            signature_algorithms: vec![0x0403, 0x0503, 0x0603, 0x0807],
            ..ClientHelloSummary::default()
        };
        let fingerprint = ja4::client(&hello, Carrier::Tcp).fingerprint;
        let mut parts = fingerprint.split('_').skip(1);
        let (b, c) = (parts.next().unwrap(), parts.next().unwrap());
        let mut catalog = StackCatalog::default();
        catalog.extend(vec![entry("openssl", "3.0", b, c)]);
        (hello, catalog)
    }

    #[test]
    fn a_psk_resumption_names_the_stack_of_the_full_handshake() {
        let (full, catalog) = openssl_hello();
        let expected = known("openssl", "3.0", MatchBasis::Ja4Bc);
        assert_eq!(catalog.identify_hello(&full, Carrier::Tcp), expected);
        // What `openssl s_client -sess_in -early_data` adds: early_data, then
        // pre_shared_key (always last, RFC 8446 §4.2.11).
        let mut resumed = full.clone();
        resumed.extensions.extend([42, 41]);
        resumed.psk = true;
        resumed.early_data = true;
        let resumed_ja4 = ja4::client(&resumed, Carrier::Tcp).fingerprint;
        assert_eq!(
            catalog.identify(&resumed_ja4),
            StackMatch::Unknown,
            "c moved"
        );
        assert_eq!(catalog.identify_hello(&resumed, Carrier::Tcp), expected);
        // pre_shared_key alone (no early data) too.
        resumed.extensions.retain(|&e| e != 42);
        assert_eq!(catalog.identify_hello(&resumed, Carrier::Tcp), expected);
    }

    #[test]
    fn other_extensions_still_tell_stacks_apart() {
        let (full, catalog) = openssl_hello();
        let mut other = full.clone();
        other.extensions.push(21); // padding: part of what a library sends
        assert_eq!(
            catalog.identify_hello(&other, Carrier::Tcp),
            StackMatch::Unknown
        );
        other.extensions.push(41);
        assert_eq!(
            catalog.identify_hello(&other, Carrier::Tcp),
            StackMatch::Unknown
        );
    }

    #[test]
    fn a_session_without_a_client_hello_is_unknown() {
        let (full, catalog) = openssl_hello();
        let mut session = HandshakeSummary::default();
        assert_eq!(catalog.identify_session(&session), StackMatch::Unknown);
        session.client_hello = Some(Box::new(full));
        assert_eq!(catalog.identify_session(&session).label(), "openssl 3.0");
    }

    #[test]
    fn unknown_fingerprints_and_non_ja4_text_are_unknown() {
        let catalog = StackCatalog::from_toml(TWO).unwrap();
        for text in [
            "t13d1812h2_000000000000_eeeeeeeeeeee",
            "",
            "t13d1812h2",
            "t13d1812h2_aaaaaaaaaaaa",
            "t13d1812h2_aaaaaaaaaaaa_cccccccccccc_extra",
            "t13d1812h2_AAAAAAAAAAAA_cccccccccccX",
        ] {
            assert_eq!(catalog.identify(text), StackMatch::Unknown, "{text:?}");
        }
        assert_eq!(StackMatch::Unknown.label(), "unknown");
    }

    #[test]
    fn c_alone_matches_weakly_when_one_stack_owns_it() {
        let catalog = StackCatalog::from_toml(TWO).unwrap();
        // A program that chose its own cipher list on top of OpenSSL.
        let found = catalog.identify("t13d0512h2_0123456789ab_cccccccccccc");
        assert_eq!(found, known("openssl", "3.0", MatchBasis::Ja4C));
        assert_eq!(MatchBasis::Ja4C.as_str(), "ja4_c");
        assert_eq!(MatchBasis::Ja4Bc.as_str(), "ja4_bc");
    }

    #[test]
    fn c_shared_by_two_stacks_gives_no_c_only_answer() {
        let mut catalog = StackCatalog::from_toml(TWO).unwrap();
        catalog.extend(vec![entry("node", "20.20", "eeeeeeeeeeee", "cccccccccccc")]);
        // the user's entry outranks the built-in one for c-only matches
        assert_eq!(
            catalog.identify("t13d0512h2_0123456789ab_cccccccccccc"),
            known("node", "20.20", MatchBasis::Ja4C)
        );
        let mut catalog = StackCatalog::from_toml(&format!(
            "{TWO}\n[[stack]]\nname = \"node\"\nversion = \"20.20\"\nja4_b = \"eeeeeeeeeeee\"\nja4_c = \"cccccccccccc\"\n"
        ))
        .unwrap();
        assert_eq!(
            catalog.identify("t13d0512h2_0123456789ab_cccccccccccc"),
            StackMatch::Unknown
        );
        // exact matches are unaffected
        assert_eq!(
            catalog.identify("t13d0512h2_eeeeeeeeeeee_cccccccccccc"),
            known("node", "20.20", MatchBasis::Ja4Bc)
        );
        catalog.extend(Vec::new());
        assert_eq!(catalog.entries().count(), 3);
    }

    #[test]
    fn user_entry_overrides_builtin_with_the_same_b_and_c() {
        let mut catalog = StackCatalog::from_toml(TWO).unwrap();
        catalog.extend(vec![
            // upper case is accepted from users and folded
            entry("openssl-fips", "3.0", "AAAAAAAAAAAA", "CCCCCCCCCCCC"),
            entry("inhouse-agent", "2.1", "111111111111", "222222222222"),
            entry("broken", "1", "short", "222222222222"),
        ]);
        assert_eq!(
            catalog.identify("t13d1812h2_aaaaaaaaaaaa_cccccccccccc"),
            known("openssl-fips", "3.0", MatchBasis::Ja4Bc)
        );
        assert_eq!(
            catalog
                .identify("t13d1812h2_111111111111_222222222222")
                .label(),
            "inhouse-agent 2.1"
        );
        // replaced in place, the broken one skipped: 2 built-in + 1 new
        assert_eq!(catalog.entries().count(), 3);
        assert_eq!(
            catalog.identify("t12d0000h1_bbbbbbbbbbbb_dddddddddddd"),
            known("gnutls", "3.7", MatchBasis::Ja4Bc)
        );
    }

    #[test]
    fn duplicate_b_and_c_in_one_file_is_an_error_naming_both_lines() {
        let text = format!(
            "{TWO}\n[[stack]]\nname = \"again\"\nversion = \"1.0\"\nja4_b = \"aaaaaaaaaaaa\"\nja4_c = \"cccccccccccc\"\n"
        );
        let error = StackCatalog::from_toml(&text).unwrap_err();
        assert_eq!(
            error,
            StackError::Duplicate {
                line: 19,
                name: "again".to_string(),
                first_line: 6,
                first_name: "openssl".to_string(),
                ja4_b: "aaaaaaaaaaaa".to_string(),
                ja4_c: "cccccccccccc".to_string(),
            }
        );
        assert_eq!(
            error.to_string(),
            "stacks file line 19: stack \"again\" repeats ja4_b/ja4_c aaaaaaaaaaaa_cccccccccccc \
             of stack \"openssl\" (line 6)"
        );
    }

    #[test]
    fn malformed_hash_is_an_error_with_line_and_value() {
        let text = TWO.replace("\"dddddddddddd\"", "\"ddddddddddd\"");
        let error = StackCatalog::from_toml(&text).unwrap_err();
        assert_eq!(
            error.to_string(),
            "stacks file line 14: stack \"gnutls\": ja4_c \"ddddddddddd\" is not 12 lowercase hex characters"
        );
        let text = TWO.replace("\"aaaaaaaaaaaa\"", "\"AAAAAAAAAAAA\"");
        assert!(matches!(
            StackCatalog::from_toml(&text),
            Err(StackError::Invalid { line: 6, .. })
        ));
    }

    #[test]
    fn empty_name_missing_field_and_unknown_key_are_errors() {
        let text = TWO.replace("name = \"gnutls\"", "name = \" \"");
        assert_eq!(
            StackCatalog::from_toml(&text).unwrap_err().to_string(),
            "stacks file line 11: stack \" \": name is empty"
        );
        let text = TWO.replace("version = \"3.7\"\n", "");
        let error = StackCatalog::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("missing field `version`"), "{error}");
        let text = TWO.replace("version = \"3.7\"", "version = \"3.7\"\nflavour = \"x\"");
        let error = StackCatalog::from_toml(&text).unwrap_err().to_string();
        assert!(error.contains("unknown field `flavour`"), "{error}");
        assert!(matches!(
            StackCatalog::from_toml("[[stack]\n"),
            Err(StackError::Syntax(_))
        ));
    }

    #[test]
    fn policy_file_stacks_are_read_beside_other_keys_and_win() {
        let policy = r#"
[networks]
internal = ["10.0.0.0/8"]

[[stack]]
name = "inhouse-agent"
version = "2.1"
clients = ["agent"]
ja4_b = "aaaaaaaaaaaa"
ja4_c = "cccccccccccc"
"#;
        let entries = entries_in_policy(policy).unwrap();
        assert_eq!(
            entries,
            [StackEntry {
                name: "inhouse-agent".to_string(),
                version: "2.1".to_string(),
                clients: vec!["agent".to_string()],
                ja4_b: "aaaaaaaaaaaa".to_string(),
                ja4_c: "cccccccccccc".to_string(),
            }]
        );
        let mut catalog = StackCatalog::from_toml(TWO).unwrap();
        catalog.extend(entries);
        assert_eq!(
            catalog.identify("t13d1812h2_aaaaaaaaaaaa_cccccccccccc"),
            known("inhouse-agent", "2.1", MatchBasis::Ja4Bc)
        );
        // the stacks file itself stays strict about top-level keys
        assert!(matches!(
            StackCatalog::from_toml(policy),
            Err(StackError::Syntax(_))
        ));
        // errors carry the policy file's line
        let broken = policy.replace("\"cccccccccccc\"", "\"c\"");
        assert_eq!(
            entries_in_policy(&broken).unwrap_err().to_string(),
            "stacks file line 10: stack \"inhouse-agent\": ja4_c \"c\" is not 12 lowercase hex characters"
        );
    }

    #[test]
    fn builtin_catalog_parses_and_names_the_captured_stacks() {
        let entries = entries_from_toml(BUILTIN).unwrap();
        let catalog = StackCatalog::builtin();
        assert_eq!(catalog.entries().count(), entries.len());
        for name in ["openssl", "gnutls", "nss", "java", "node", "go", "rustls"] {
            assert!(
                entries
                    .iter()
                    .any(|e| e.name.split(" / ").any(|n| n == name)),
                "no {name} entry"
            );
        }
        for entry in &entries {
            let ja4 = format!("t13d0000h2_{}_{}", entry.ja4_b, entry.ja4_c);
            assert_eq!(
                catalog.identify(&ja4),
                StackMatch::Known {
                    name: &entry.name,
                    version: &entry.version,
                    basis: MatchBasis::Ja4Bc
                }
            );
        }
    }
}
