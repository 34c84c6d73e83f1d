//! Identifiers. KAZOO account ids are 32 lowercase hex characters; everything that names an
//! account goes through [`AccountId`] so that a malformed id is refused at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A KAZOO account id: exactly 32 lowercase hex characters.
///
/// Kept inline (32 bytes, no allocation): ids are cloned into every hook, delivery and table
/// entry, and compared on every lookup, where following a pointer to the text would cost a
/// cache miss each time.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId([u8; 32]);

/// The text was not a 32-character lowercase hex account id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an account id: {0:?}")]
pub struct BadAccountId(pub String);

impl AccountId {
    /// Parses an account id. Upper-case hex is refused rather than folded: KAZOO ids are lower
    /// case and the same account must never appear under two spellings.
    pub fn parse(s: &str) -> Result<Self, BadAccountId> {
        match <[u8; 32]>::try_from(s.as_bytes()) {
            Ok(bytes) if is_hex32(s) => Ok(AccountId(bytes)),
            _ => Err(BadAccountId(s.to_owned())),
        }
    }

    /// Builds an id from 16 bytes (random ones: [`AccountId::random`]).
    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        let mut text = [0u8; 32];
        for (pair, b) in text.chunks_exact_mut(2).zip(bytes) {
            pair.copy_from_slice(&hex_digits(b));
        }
        AccountId(text)
    }

    /// A new random account id.
    pub fn random() -> Self {
        let mut b = [0u8; 16];
        fill_random(&mut b);
        AccountId::from_bytes(b)
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII hex (`parse`, `from_bytes`), so this cannot fail.
        std::str::from_utf8(&self.0).expect("account ids are ASCII hex")
    }

    /// The account's database name, `account/xx/yy/rest`, as KAZOO names it.
    pub fn db_name(&self) -> String {
        let s = self.as_str();
        format!("account/{}/{}/{}", &s[..2], &s[2..4], &s[4..])
    }
}

impl Serialize for AccountId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AccountId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AccountId::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.as_str())
    }
}

impl AsRef<str> for AccountId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

/// True for exactly 32 lowercase hex characters (the shape of KAZOO account and doc ids).
pub fn is_hex32(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The one source of randomness for ids, keys and secrets.
fn fill_random(buf: &mut [u8]) {
    use rand::RngCore;
    rand::rng().fill_bytes(buf);
}

/// `bytes` random bytes as lower-case hex (ids, api keys, secrets).
pub fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    fill_random(&mut b);
    hex(&b)
}

/// A new document id: 32 random hex characters, as CouchDB and KAZOO make them.
pub fn new_doc_id() -> String {
    random_hex(16)
}

/// A new document id that sorts after every one this process made before: 16 hex digits of a
/// counter that starts at the clock (microseconds) and only grows, then 16 random ones. Across
/// processes, ids sort by time. Attempts take theirs when they are made, so a store that
/// lists rows by (second, id) keeps same-second attempts in order, and a batch written twice
/// (its answer lost) writes the same ids twice, which the store can recognise.
pub fn ordered_doc_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = u64::try_from(crate::time::now_unix_ms()).unwrap_or(0) * 1000;
    let mut prev = LAST.load(Ordering::Relaxed);
    let next = loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => break next,
            Err(seen) => prev = seen,
        }
    };
    format!("{next:016x}{}", random_hex(8))
}

/// Formats 16 bytes as 32 lowercase hex characters.
pub fn hex32(bytes: [u8; 16]) -> String {
    hex(&bytes)
}

/// Lower-case hex of any bytes (two characters per byte).
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.extend(hex_digits(b).map(char::from));
    }
    s
}

/// The two lower-case hex digits of a byte.
fn hex_digits(b: u8) -> [u8; 2] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    [HEX[(b >> 4) as usize], HEX[(b & 0xf) as usize]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordered_doc_ids_grow_in_the_order_they_are_made() {
        let ids: Vec<String> = (0..100).map(|_| ordered_doc_id()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|id| is_hex32(id)));
    }

    #[test]
    fn account_id_accepts_only_lowercase_hex32() {
        assert!(AccountId::parse("0123456789abcdef0123456789abcdef").is_ok());
        assert!(AccountId::parse("0123456789ABCDEF0123456789abcdef").is_err());
        assert!(AccountId::parse("0123").is_err());
        assert!(AccountId::parse("0123456789abcdef0123456789abcdeg").is_err());
    }

    #[test]
    fn db_name_splits_like_kazoo() {
        let id = AccountId::parse("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(id.db_name(), "account/01/23/456789abcdef0123456789abcdef");
    }

    #[test]
    fn hex32_round_trips() {
        let id = AccountId::from_bytes([0xab; 16]);
        assert_eq!(id.as_str(), "abababababababababababababababab");
    }
}
