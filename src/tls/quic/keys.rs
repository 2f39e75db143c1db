//! Initial packet protection keys (RFC 9001 §5.2) and the two ciphers that
//! use them: AES-128-GCM for the payload, AES-128-ECB for the header mask.

use aes::cipher::{generic_array::GenericArray, BlockEncrypt, KeyInit};
use aes::Aes128;
use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;

use super::version::QuicVersion;

/// Raw Initial key material of one direction, as RFC 9001 Appendix A lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitialSecrets {
    pub key: [u8; 16],
    pub iv: [u8; 12],
    pub hp: [u8; 16],
}

/// HKDF-Expand-Label (RFC 8446 §7.1) with the "tls13 " prefix. `None` when
/// `secret` is shorter than a SHA-256 output or `out` longer than 255 bytes.
pub fn hkdf_expand_label(
    secret: &[u8],
    label: &[u8],
    context: &[u8],
    out: &mut [u8],
) -> Option<()> {
    const PREFIX: &[u8] = b"tls13 ";
    let length = u16::try_from(out.len()).ok()?;
    let label_length = u8::try_from(PREFIX.len() + label.len()).ok()?;
    let context_length = u8::try_from(context.len()).ok()?;
    // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel
    let mut info = Vec::with_capacity(4 + usize::from(label_length) + context.len());
    info.extend_from_slice(&length.to_be_bytes());
    info.push(label_length);
    info.extend_from_slice(PREFIX);
    info.extend_from_slice(label);
    info.push(context_length);
    info.extend_from_slice(context);
    let hkdf = Hkdf::<Sha256>::from_prk(secret).ok()?;
    hkdf.expand(&info, out).ok()
}

/// Client and server Initial secrets for the client's first Destination
/// Connection ID; `None` for a version without a known salt.
pub fn derive_initial_secrets(
    version: QuicVersion,
    client_dcid: &[u8],
) -> Option<(InitialSecrets, InitialSecrets)> {
    let salt = version.initial_salt()?;
    let (initial_secret, _) = Hkdf::<Sha256>::extract(Some(salt), client_dcid);
    let mut client = [0u8; 32];
    let mut server = [0u8; 32];
    hkdf_expand_label(&initial_secret, b"client in", b"", &mut client)?;
    hkdf_expand_label(&initial_secret, b"server in", b"", &mut server)?;
    Some((
        expand_packet_keys(version, &client)?,
        expand_packet_keys(version, &server)?,
    ))
}

fn expand_packet_keys(version: QuicVersion, secret: &[u8]) -> Option<InitialSecrets> {
    let labels = version.labels();
    let mut keys = InitialSecrets {
        key: [0; 16],
        iv: [0; 12],
        hp: [0; 16],
    };
    hkdf_expand_label(secret, labels.key, b"", &mut keys.key)?;
    hkdf_expand_label(secret, labels.iv, b"", &mut keys.iv)?;
    hkdf_expand_label(secret, labels.hp, b"", &mut keys.hp)?;
    Some(keys)
}

/// The keys of one direction. Kept as key bytes (44 bytes), the ciphers
/// built per datagram: expanded AES-GCM and AES contexts take 1.4 KB per
/// direction, which a flood of stalled Initials would hold per flow, while
/// a key expansion costs well under a microsecond on a handshake packet.
#[derive(Clone)]
pub struct PacketKeys {
    key: [u8; 16],
    iv: [u8; 12],
    hp: [u8; 16],
}

impl PacketKeys {
    pub fn new(secrets: &InitialSecrets) -> Self {
        Self {
            key: secrets.key,
            iv: secrets.iv,
            hp: secrets.hp,
        }
    }

    /// Header protection mask: AES-ECB of the 16-byte sample (RFC 9001 §5.4.3).
    pub fn header_mask(&self, sample: &[u8; 16]) -> [u8; 16] {
        let mut block = GenericArray::from(*sample);
        Aes128::new(GenericArray::from_slice(&self.hp)).encrypt_block(&mut block);
        block.into()
    }

    /// Opens `ciphertext` in place; the nonce is the IV xor the packet number
    /// (RFC 9001 §5.3). Returns false when the tag does not verify.
    pub fn open(
        &self,
        packet_number: u64,
        header: &[u8],
        ciphertext: &mut [u8],
        tag: &[u8; 16],
    ) -> bool {
        let mut nonce = self.iv;
        for (byte, pn) in nonce[4..].iter_mut().zip(packet_number.to_be_bytes()) {
            *byte ^= pn;
        }
        Aes128Gcm::new(GenericArray::from_slice(&self.key))
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                header,
                ciphertext,
                Tag::from_slice(tag),
            )
            .is_ok()
    }
}

impl std::fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PacketKeys")
    }
}
