//! Where an idempotency key's entry lives in Redis.
//!
//! A request's entry is `<prefix>{<key>}` and its fence counter
//! `<prefix>{<key>}:fence`. The braces are a Redis Cluster *hash tag*: only
//! the text between them chooses the hash slot, so both keys of a request
//! live in one slot and each script touches a single node. A key's `%`, `{`
//! and `}` are written `%25`, `%7B` and `%7D`, so a key can neither end the
//! tag early nor make it empty; a prefix may not contain braces at all.
//!
//! ```
//! use stormguard_redis::keys;
//! let entry = keys::entry_key("shop:", "order-7")?;
//! assert_eq!(entry, "shop:{order-7}");
//! assert_eq!(keys::fence_key(&entry), "shop:{order-7}:fence");
//! assert_eq!(keys::entry_key("shop:", "a}b")?, "shop:{a%7Db}");
//! # Ok::<(), stormguard_redis::keys::KeyError>(())
//! ```

use std::fmt;

/// The prefix of every entry unless configured otherwise.
///
/// ```
/// assert_eq!(stormguard_redis::keys::DEFAULT_PREFIX, "stormguard:idem:");
/// ```
pub const DEFAULT_PREFIX: &str = "stormguard:idem:";

/// The longest key accepted, in bytes: Stripe's limit for an
/// `Idempotency-Key`.
///
/// ```
/// assert_eq!(stormguard_redis::keys::MAX_KEY_LEN, 255);
/// ```
pub const MAX_KEY_LEN: usize = 255;

/// The longest prefix accepted, in bytes.
///
/// ```
/// assert_eq!(stormguard_redis::keys::MAX_PREFIX_LEN, 128);
/// ```
pub const MAX_PREFIX_LEN: usize = 128;

/// The longest fingerprint accepted, in bytes (a SHA-256 is 32).
///
/// ```
/// assert_eq!(stormguard_redis::keys::MAX_FINGERPRINT_LEN, 1024);
/// ```
pub const MAX_FINGERPRINT_LEN: usize = 1024;

/// Why a key, a prefix or a fingerprint cannot be used: each names the
/// field, and a server answers a bad key or fingerprint with `400 Bad
/// Request`.
///
/// ```
/// use stormguard_redis::keys::{entry_key, KeyError};
/// assert_eq!(entry_key("p:", ""), Err(KeyError::EmptyKey));
/// assert_eq!(KeyError::EmptyKey.to_string(), "invalid key: must not be empty");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyError {
    /// The key is empty.
    EmptyKey,
    /// The key is longer than [`MAX_KEY_LEN`] bytes.
    KeyTooLong {
        /// Its length, in bytes.
        len: usize,
    },
    /// The prefix contains `{` or `}`, which would move the hash tag.
    BraceInPrefix,
    /// The prefix is longer than [`MAX_PREFIX_LEN`] bytes.
    PrefixTooLong {
        /// Its length, in bytes.
        len: usize,
    },
    /// The fingerprint is longer than [`MAX_FINGERPRINT_LEN`] bytes.
    FingerprintTooLong {
        /// Its length, in bytes.
        len: usize,
    },
}

impl KeyError {
    /// The name of the field at fault: `key`, `prefix` or `fingerprint`.
    ///
    /// ```
    /// use stormguard_redis::keys::KeyError;
    /// assert_eq!(KeyError::BraceInPrefix.field(), "prefix");
    /// ```
    pub const fn field(&self) -> &'static str {
        match self {
            KeyError::EmptyKey | KeyError::KeyTooLong { .. } => "key",
            KeyError::BraceInPrefix | KeyError::PrefixTooLong { .. } => "prefix",
            KeyError::FingerprintTooLong { .. } => "fingerprint",
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: ", self.field())?;
        match self {
            KeyError::EmptyKey => f.write_str("must not be empty"),
            KeyError::KeyTooLong { len } => {
                write!(f, "at most {MAX_KEY_LEN} bytes, found {len}")
            }
            KeyError::BraceInPrefix => f.write_str("must not contain '{' or '}'"),
            KeyError::PrefixTooLong { len } => {
                write!(f, "at most {MAX_PREFIX_LEN} bytes, found {len}")
            }
            KeyError::FingerprintTooLong { len } => {
                write!(f, "at most {MAX_FINGERPRINT_LEN} bytes, found {len}")
            }
        }
    }
}

impl std::error::Error for KeyError {}

/// Checks a prefix: at most [`MAX_PREFIX_LEN`] bytes, no braces.
///
/// # Errors
/// [`KeyError::BraceInPrefix`] or [`KeyError::PrefixTooLong`].
///
/// ```
/// use stormguard_redis::keys::{check_prefix, KeyError};
/// assert_eq!(check_prefix("svc:idem:"), Ok(()));
/// assert_eq!(check_prefix("svc:{x}:"), Err(KeyError::BraceInPrefix));
/// ```
pub fn check_prefix(prefix: &str) -> Result<(), KeyError> {
    if prefix.len() > MAX_PREFIX_LEN {
        return Err(KeyError::PrefixTooLong { len: prefix.len() });
    }
    if prefix.contains(['{', '}']) {
        return Err(KeyError::BraceInPrefix);
    }
    Ok(())
}

/// Checks a fingerprint's length.
///
/// # Errors
/// [`KeyError::FingerprintTooLong`] above [`MAX_FINGERPRINT_LEN`] bytes.
///
/// ```
/// use stormguard_redis::keys::check_fingerprint;
/// assert!(check_fingerprint(&[0; 32]).is_ok());
/// assert!(check_fingerprint(&[0; 2000]).is_err());
/// ```
pub fn check_fingerprint(fingerprint: &[u8]) -> Result<(), KeyError> {
    if fingerprint.len() > MAX_FINGERPRINT_LEN {
        return Err(KeyError::FingerprintTooLong {
            len: fingerprint.len(),
        });
    }
    Ok(())
}

/// The Redis key of `key`'s entry under `prefix`: `<prefix>{<escaped key>}`.
///
/// # Errors
/// A [`KeyError`] when the key is empty or longer than [`MAX_KEY_LEN`]
/// bytes, or the prefix is not valid ([`check_prefix`]).
///
/// ```
/// use stormguard_redis::keys::entry_key;
/// assert_eq!(entry_key("p:", "100%{x}")?, "p:{100%25%7Bx%7D}");
/// # Ok::<(), stormguard_redis::keys::KeyError>(())
/// ```
pub fn entry_key(prefix: &str, key: &str) -> Result<String, KeyError> {
    check_prefix(prefix)?;
    if key.is_empty() {
        return Err(KeyError::EmptyKey);
    }
    if key.len() > MAX_KEY_LEN {
        return Err(KeyError::KeyTooLong { len: key.len() });
    }
    let mut entry = String::with_capacity(prefix.len() + key.len() + 8);
    entry.push_str(prefix);
    entry.push('{');
    for c in key.chars() {
        match c {
            '%' => entry.push_str("%25"),
            '{' => entry.push_str("%7B"),
            '}' => entry.push_str("%7D"),
            c => entry.push(c),
        }
    }
    entry.push('}');
    Ok(entry)
}

/// The fence counter's key, next to `entry` in the same hash slot.
///
/// ```
/// assert_eq!(stormguard_redis::keys::fence_key("p:{k}"), "p:{k}:fence");
/// ```
pub fn fence_key(entry: &str) -> String {
    format!("{entry}:fence")
}

/// The Redis Cluster hash slot of a Redis key (CRC16/XMODEM of its hash
/// tag, mod 16384), as the cluster computes it.
///
/// ```
/// use stormguard_redis::keys::{entry_key, fence_key, hash_slot};
/// let entry = entry_key("p:", "order-7")?;
/// assert_eq!(hash_slot(&entry), hash_slot(&fence_key(&entry)));
/// assert_eq!(hash_slot("123456789"), 0x31c3 % 16384); // CRC16/XMODEM's check value
/// # Ok::<(), stormguard_redis::keys::KeyError>(())
/// ```
pub fn hash_slot(key: &str) -> u16 {
    let bytes = key.as_bytes();
    let tagged = bytes
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = bytes.get(open + 1..)?;
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| rest.get(..close)).flatten()
        })
        .unwrap_or(bytes);
    crc16_xmodem(tagged) % 16384
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in bytes {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_keeps_its_entry_and_fence_in_one_slot() {
        let nasty = ["}", "{", "{}", "}{", "%", "a{b}c", "{{{", "}}}", "é}", " "];
        for key in nasty {
            let entry = entry_key("svc:", key).unwrap();
            assert_eq!(hash_slot(&entry), hash_slot(&fence_key(&entry)), "{key:?}");
            // The tag is the escaped key, never empty: distinct keys are
            // distinct tags.
            let tag = &entry["svc:{".len()..entry.len() - 1];
            assert!(!tag.is_empty() && !tag.contains(['{', '}']), "{key:?}");
        }
    }

    #[test]
    fn escaping_is_injective() {
        let keys = ["%7B", "{", "%257B", "%", "%25"];
        let entries: std::collections::HashSet<_> =
            keys.iter().map(|k| entry_key("", k).unwrap()).collect();
        assert_eq!(entries.len(), keys.len());
    }

    #[test]
    fn limits_name_their_field() {
        let long = "k".repeat(256);
        assert_eq!(entry_key("", &long), Err(KeyError::KeyTooLong { len: 256 }));
        assert!(entry_key("", &long[..255]).is_ok());
        let err = entry_key(&"p".repeat(129), "k").unwrap_err();
        assert_eq!(err.field(), "prefix");
        assert_eq!(
            err.to_string(),
            "invalid prefix: at most 128 bytes, found 129"
        );
        assert_eq!(
            check_fingerprint(&[0; 1025]).unwrap_err().to_string(),
            "invalid fingerprint: at most 1024 bytes, found 1025"
        );
    }
}
