//! The encrypted layer's keys: the user's [`Key`], and what HKDF-SHA256 derives from it for
//! one disk (salt: the disk's random 32-byte id) and one purpose (info: a label). Every
//! derived key is wiped when dropped; so is the user's key.
//!
//! | purpose (HKDF info)              | used for                                        |
//! |----------------------------------|-------------------------------------------------|
//! | `key check`                      | the header's key check (a right key or a wrong) |
//! | `header`                         | HMAC-SHA256 over the header                     |
//! | `metadata`                       | HMAC-SHA256 over each metadata sector           |
//! | `data session` ‖ session id      | the AES-256-GCM key of one write session        |
//!
//! (each label is prefixed with `shared-core encrypted block v2: `).

use aes_gcm::{Aes256Gcm, KeyInit};
use core::fmt;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::layout::{DISK_ID, MAC, SESSION};

/// A 256-bit key. `Debug` does not show it; it is wiped from memory when dropped, and is
/// not `Clone` (one copy to wipe). [`Key::new`] copies its argument: wipe the caller's
/// array too if it held a secret.
pub struct Key([u8; 32]);

impl Key {
    /// The key of these bytes.
    pub const fn new(bytes: [u8; 32]) -> Key {
        Key(bytes)
    }

    /// Parses 64 hex digits (either case).
    pub fn from_hex(hex: &str) -> Option<Key> {
        let hex = hex.as_bytes();
        if hex.len() != 64 {
            return None;
        }
        let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
        let mut key = Key([0u8; 32]);
        for (i, byte) in key.0.iter_mut().enumerate() {
            *byte = digit(hex[2 * i])? << 4 | digit(hex[2 * i + 1])?;
        }
        Some(key)
    }

    /// Whether two keys are the same (in constant time: HMAC's comparison).
    pub fn same_as(&self, other: &Key) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(b"same key?");
        let mut theirs = <Hmac<Sha256> as Mac>::new_from_slice(&other.0).expect("HMAC takes any key length");
        theirs.update(b"same key?");
        mac.verify(&theirs.finalize().into_bytes()).is_ok()
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ZeroizeOnDrop for Key {}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Key(..)")
    }
}

impl crate::bootargs::FromArg for Key {
    fn expected() -> alloc::string::String {
        "64 hex digits (a 256-bit key)".into()
    }
    fn from_arg(value: &str) -> Option<Self> {
        Key::from_hex(value)
    }
}

const LABEL: &[u8] = b"shared-core encrypted block v2: ";

/// The keys of one disk, derived from the user's key and the disk id.
pub(super) struct DiskKeys {
    /// HKDF's pseudorandom key for this disk (the input of every expansion).
    prk: [u8; 32],
    header_mac: [u8; 32],
    meta_mac: [u8; 32],
    /// The key check stored in the header.
    pub key_check: [u8; MAC],
}

impl Drop for DiskKeys {
    fn drop(&mut self) {
        self.prk.zeroize();
        self.header_mac.zeroize();
        self.meta_mac.zeroize();
    }
}

impl DiskKeys {
    pub fn derive(key: &Key, disk_id: &[u8; DISK_ID]) -> DiskKeys {
        let (prk, _) = Hkdf::<Sha256>::extract(Some(disk_id), &key.0);
        let mut keys = DiskKeys { prk: prk.into(), header_mac: [0; 32], meta_mac: [0; 32], key_check: [0; MAC] };
        let mut out = [0u8; 32];
        keys.expand(b"key check", &[], &mut out);
        keys.key_check = out;
        keys.expand(b"header", &[], &mut out);
        keys.header_mac = out;
        keys.expand(b"metadata", &[], &mut out);
        keys.meta_mac = out;
        out.zeroize();
        keys
    }

    fn expand(&self, purpose: &[u8], context: &[u8], out: &mut [u8; 32]) {
        let hkdf = Hkdf::<Sha256>::from_prk(&self.prk).expect("a SHA-256-sized PRK");
        hkdf.expand_multi_info(&[LABEL, purpose, context], out).expect("32 bytes is a valid HKDF length");
    }

    /// The AES-256-GCM cipher of write session `session`.
    pub fn session_cipher(&self, session: &[u8; SESSION]) -> Aes256Gcm {
        let mut key = [0u8; 32];
        self.expand(b"data session", session, &mut key);
        let cipher = Aes256Gcm::new(&key.into());
        key.zeroize();
        cipher
    }

    fn mac(key: &[u8; 32], prefix: &[u8], bytes: &[u8]) -> [u8; MAC] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(prefix);
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    fn verify(key: &[u8; 32], prefix: &[u8], bytes: &[u8], tag: &[u8]) -> bool {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(prefix);
        mac.update(bytes);
        mac.verify_slice(tag).is_ok()
    }

    /// The MAC of the header's signed bytes.
    pub fn header_mac(&self, signed: &[u8]) -> [u8; MAC] {
        Self::mac(&self.header_mac, b"header", signed)
    }

    /// Whether `tag` is the MAC of the header's signed bytes.
    pub fn header_verifies(&self, signed: &[u8], tag: &[u8]) -> bool {
        Self::verify(&self.header_mac, b"header", signed, tag)
    }

    /// The MAC of group `group`'s metadata (the bytes before the MAC).
    pub fn meta_mac(&self, group: u64, signed: &[u8]) -> [u8; MAC] {
        Self::mac(&self.meta_mac, &group.to_le_bytes(), signed)
    }

    /// Whether `tag` is the MAC of group `group`'s metadata.
    pub fn meta_verifies(&self, group: u64, signed: &[u8], tag: &[u8]) -> bool {
        Self::verify(&self.meta_mac, &group.to_le_bytes(), signed, tag)
    }

    /// Whether `check` is this key's check for this disk (every byte compared: no early
    /// exit to time).
    pub fn key_check_matches(&self, check: &[u8; MAC]) -> bool {
        check.iter().zip(&self.key_check).fold(0u8, |diff, (a, b)| diff | (a ^ b)) == 0
    }
}
