//! TLS 1.3 record protection (RFC 8446 §5.2, §5.3, §7.3), receive side only.
//!
//! `session` hands each encrypted record of a session whose traffic secrets
//! are in the key log to the [`RecordDecrypter`] of its direction and gets
//! back the inner content type and plaintext. Keys come from HKDF-Expand-Label
//! over the logged secret; the AEADs are the RustCrypto crates. Nothing here
//! keeps a record: the plaintext goes into a buffer the caller reuses.

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes128Gcm, Aes256Gcm, Nonce};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::{Sha256, Sha384};

const NONCE_LENGTH: usize = 12;
const TAG_LENGTH: usize = 16;

/// The TLS 1.3 cipher suites tlstap can read (RFC 8446 §B.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Suite {
    Aes128GcmSha256,
    Aes256GcmSha384,
    ChaCha20Poly1305Sha256,
}

impl Suite {
    fn from_id(id: u16) -> Option<Self> {
        match id {
            0x1301 => Some(Self::Aes128GcmSha256),
            0x1302 => Some(Self::Aes256GcmSha384),
            0x1303 => Some(Self::ChaCha20Poly1305Sha256),
            // TLS_AES_128_CCM(_8)_SHA256: rare, and no CCM crate in the tree.
            _ => None,
        }
    }
}

enum Cipher {
    Aes128(Box<Aes128Gcm>),
    Aes256(Box<Aes256Gcm>),
    ChaCha(Box<ChaCha20Poly1305>),
}

/// One direction's record keys and sequence number.
pub struct RecordDecrypter {
    cipher: Cipher,
    iv: [u8; NONCE_LENGTH],
    sequence: u64,
}

impl std::fmt::Debug for RecordDecrypter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Keys stay out of logs and panics.
        write!(f, "RecordDecrypter(sequence {})", self.sequence)
    }
}

/// The suite's hash, which keys HKDF.
#[derive(Clone, Copy)]
enum Hash {
    Sha256,
    Sha384,
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with an empty context.
fn expand_label(hash: Hash, secret: &[u8], label: &[u8], out: &mut [u8]) -> Option<()> {
    let length = u16::try_from(out.len()).ok()?.to_be_bytes();
    let full_label_length = u8::try_from(6 + label.len()).ok()?;
    // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel;
    let info: [&[u8]; 5] = [&length, &[full_label_length], b"tls13 ", label, &[0]];
    match hash {
        Hash::Sha256 => Hkdf::<Sha256>::from_prk(secret)
            .ok()?
            .expand_multi_info(&info, out)
            .ok(),
        Hash::Sha384 => Hkdf::<Sha384>::from_prk(secret)
            .ok()?
            .expand_multi_info(&info, out)
            .ok(),
    }
}

impl RecordDecrypter {
    /// Keys for `suite` from a traffic secret; `None` for a suite tlstap
    /// cannot read or a secret of the wrong length for it.
    pub fn new(suite: u16, secret: &[u8]) -> Option<Self> {
        let suite = Suite::from_id(suite)?;
        let mut iv = [0u8; NONCE_LENGTH];
        let cipher = match suite {
            Suite::Aes128GcmSha256 => {
                if secret.len() != 32 {
                    return None;
                }
                let mut key = [0u8; 16];
                expand_label(Hash::Sha256, secret, b"key", &mut key)?;
                expand_label(Hash::Sha256, secret, b"iv", &mut iv)?;
                Cipher::Aes128(Box::new(Aes128Gcm::new_from_slice(&key).ok()?))
            }
            Suite::Aes256GcmSha384 => {
                if secret.len() != 48 {
                    return None;
                }
                let mut key = [0u8; 32];
                expand_label(Hash::Sha384, secret, b"key", &mut key)?;
                expand_label(Hash::Sha384, secret, b"iv", &mut iv)?;
                Cipher::Aes256(Box::new(Aes256Gcm::new_from_slice(&key).ok()?))
            }
            Suite::ChaCha20Poly1305Sha256 => {
                if secret.len() != 32 {
                    return None;
                }
                let mut key = [0u8; 32];
                expand_label(Hash::Sha256, secret, b"key", &mut key)?;
                expand_label(Hash::Sha256, secret, b"iv", &mut iv)?;
                Cipher::ChaCha(Box::new(ChaCha20Poly1305::new_from_slice(&key).ok()?))
            }
        };
        Some(Self {
            cipher,
            iv,
            sequence: 0,
        })
    }

    /// Heap bytes held (the boxed cipher's key schedule), for the memory cap.
    pub fn heap_bytes(&self) -> usize {
        match &self.cipher {
            Cipher::Aes128(_) => std::mem::size_of::<Aes128Gcm>(),
            Cipher::Aes256(_) => std::mem::size_of::<Aes256Gcm>(),
            Cipher::ChaCha(_) => std::mem::size_of::<ChaCha20Poly1305>(),
        }
    }

    /// Records decrypted so far (the next record's sequence number).
    pub fn sequence(&self) -> u64 {
        self.sequence
    }

    /// Opens one `application_data` record: `header` is its 5 bytes (the
    /// AAD), `ciphertext` its body. On success `plaintext` holds the content
    /// without its type and padding, the type is returned, and the sequence
    /// number moves on; on failure (other keys, corruption) nothing moves.
    pub fn open(
        &mut self,
        header: &[u8; 5],
        ciphertext: &[u8],
        plaintext: &mut Vec<u8>,
    ) -> Option<u8> {
        // RFC 8446 §5.2: at least the tag and the inner content type.
        if ciphertext.len() <= TAG_LENGTH {
            return None;
        }
        // §5.3: the per-record nonce is the IV XOR the padded sequence number.
        let mut nonce = self.iv;
        for (byte, seq) in nonce[4..].iter_mut().zip(self.sequence.to_be_bytes()) {
            *byte ^= seq;
        }
        let nonce = Nonce::from_slice(&nonce);
        plaintext.clear();
        plaintext.extend_from_slice(ciphertext);
        let opened = match &self.cipher {
            Cipher::Aes128(cipher) => cipher.decrypt_in_place(nonce, header, plaintext),
            Cipher::Aes256(cipher) => cipher.decrypt_in_place(nonce, header, plaintext),
            Cipher::ChaCha(cipher) => cipher.decrypt_in_place(nonce, header, plaintext),
        };
        if opened.is_err() {
            plaintext.clear();
            return None;
        }
        self.sequence = self.sequence.wrapping_add(1);
        // §5.4: zero padding after the content type.
        let end = plaintext.iter().rposition(|&b| b != 0)?;
        let content_type = plaintext[end];
        plaintext.truncate(end);
        Some(content_type)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        let text: String = text.split_whitespace().collect();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect()
    }

    // RFC 8448 §3 (simple 1-RTT handshake): server handshake traffic secret,
    // its derived key and IV, and the server's first protected record.
    const SERVER_HS_SECRET: &str =
        "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38";

    #[test]
    fn rfc8448_server_handshake_key_and_iv() {
        let secret = hex(SERVER_HS_SECRET);
        let mut key = [0u8; 16];
        let mut iv = [0u8; 12];
        expand_label(Hash::Sha256, &secret, b"key", &mut key).expect("key");
        expand_label(Hash::Sha256, &secret, b"iv", &mut iv).expect("iv");
        assert_eq!(
            key.to_vec(),
            hex("3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc")
        );
        assert_eq!(iv.to_vec(), hex("5d 31 3e b2 67 12 76 ee 13 00 0b 30"));
    }

    #[test]
    fn a_record_under_other_keys_fails_and_keeps_the_sequence() {
        // The first 32 bytes of the 674-byte protected record are not enough
        // to authenticate; a wrong key must fail, not produce garbage.
        let secret = hex(SERVER_HS_SECRET);
        let mut decrypter = RecordDecrypter::new(0x1301, &secret).expect("suite");
        let mut plaintext = Vec::new();
        let header = [23, 3, 3, 0, 20];
        assert_eq!(decrypter.open(&header, &[0u8; 20], &mut plaintext), None);
        assert_eq!(decrypter.sequence(), 0);
    }

    #[test]
    fn unknown_suites_and_wrong_secret_lengths_are_refused() {
        assert!(RecordDecrypter::new(0x1304, &[0u8; 32]).is_none());
        assert!(RecordDecrypter::new(0x1302, &[0u8; 32]).is_none());
        assert!(RecordDecrypter::new(0x1301, &[0u8; 48]).is_none());
        assert!(RecordDecrypter::new(0xc02f, &[0u8; 32]).is_none());
    }

    #[test]
    fn a_record_sealed_with_derived_keys_opens_and_loses_its_padding() {
        for (suite, length) in [(0x1301u16, 32usize), (0x1302, 48), (0x1303, 32)] {
            let secret = vec![7u8; length];
            let mut sealer = RecordDecrypter::new(suite, &secret).expect("suite");
            let mut opener = RecordDecrypter::new(suite, &secret).expect("suite");
            for sequence in 0..3u64 {
                let mut nonce = sealer.iv;
                for (byte, seq) in nonce[4..].iter_mut().zip(sequence.to_be_bytes()) {
                    *byte ^= seq;
                }
                // alert(2, 42) + inner type 21 + 3 bytes of padding
                let mut body = vec![2, 42, 21, 0, 0, 0];
                let header = [23, 3, 3, 0, (body.len() + TAG_LENGTH) as u8];
                let nonce = Nonce::from_slice(&nonce);
                match &sealer.cipher {
                    Cipher::Aes128(c) => c.encrypt_in_place(nonce, &header, &mut body),
                    Cipher::Aes256(c) => c.encrypt_in_place(nonce, &header, &mut body),
                    Cipher::ChaCha(c) => c.encrypt_in_place(nonce, &header, &mut body),
                }
                .expect("seal");
                sealer.sequence += 1;
                let mut plaintext = Vec::new();
                assert_eq!(opener.open(&header, &body, &mut plaintext), Some(21));
                assert_eq!(plaintext, vec![2, 42]);
            }
            assert_eq!(opener.sequence(), 3);
        }
    }
}
