//! Sealing and opening sectors: the write session's cipher, and a few recent sessions'
//! ciphers for reads. A sector sealed in session `s` with counter `c` is AES-256-GCM
//! under the session key `HKDF(disk, "data session" ‖ s)` with the nonce `0⁶⁴ ‖ c`, and
//! authenticates its logical sector number; `(s, c)` and the tag are its metadata slot.

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use alloc::vec::Vec;

use super::keys::DiskKeys;
use super::layout::{SlotId, SESSION, TAG};
use crate::block::BlockError;

/// Ciphers of sessions other than the writing one, kept for reads (each costs an HKDF
/// expansion and an AES key schedule to make).
const RECENT: usize = 4;

struct Session {
    id: [u8; SESSION],
    /// The counter of the next sector sealed.
    next: u32,
    cipher: Aes256Gcm,
}

pub(super) struct Ciphers {
    pub keys: DiskKeys,
    writing: Option<Session>,
    recent: Vec<([u8; SESSION], Aes256Gcm)>,
    /// Sessions started (the module docs' bound counts them).
    pub sessions_started: u64,
}

fn nonce(counter: u32) -> Nonce<aes_gcm::aead::consts::U12> {
    let mut n = [0u8; 12];
    n[8..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

impl Ciphers {
    pub fn new(keys: DiskKeys) -> Ciphers {
        Ciphers { keys, writing: None, recent: Vec::with_capacity(RECENT), sessions_started: 0 }
    }

    /// Encrypts `sector` (logical `lba`) in place under a fresh `(session, counter)`.
    pub fn seal(&mut self, lba: u64, sector: &mut [u8]) -> Result<(SlotId, [u8; TAG]), BlockError> {
        let session = match &mut self.writing {
            Some(s) if s.next < u32::MAX => s,
            _ => {
                // A new session: a new random id, so a new key, and counters from 0.
                let mut id = [0u8; SESSION];
                crate::services::fill_random(&mut id);
                self.sessions_started += 1;
                self.writing.insert(Session { id, next: 0, cipher: self.keys.session_cipher(&id) })
            }
        };
        let id = SlotId { session: session.id, counter: session.next };
        session.next += 1;
        let tag = session
            .cipher
            .encrypt_in_place_detached(&nonce(id.counter), &lba.to_le_bytes(), sector)
            .map_err(|_| BlockError::Io("AES-GCM refused a sector".into()))?;
        Ok((id, tag.into()))
    }

    /// Authenticates and decrypts `sector` (logical `lba`) in place; `false` (and the
    /// sector garbled) when it does not authenticate under `id` and `tag`.
    pub fn open(&mut self, id: &SlotId, tag: &[u8; TAG], lba: u64, sector: &mut [u8]) -> bool {
        let cipher = match &self.writing {
            Some(s) if s.id == id.session => &s.cipher,
            _ => {
                let at = match self.recent.iter().position(|(s, _)| *s == id.session) {
                    Some(at) => at,
                    None => {
                        if self.recent.len() == RECENT {
                            self.recent.remove(0);
                        }
                        self.recent.push((id.session, self.keys.session_cipher(&id.session)));
                        self.recent.len() - 1
                    }
                };
                &self.recent[at].1
            }
        };
        cipher.decrypt_in_place_detached(&nonce(id.counter), &lba.to_le_bytes(), sector, Tag::from_slice(tag)).is_ok()
    }
}
