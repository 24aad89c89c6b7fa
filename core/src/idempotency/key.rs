//! The client half of a keyed method: a random key, sent with every attempt.

use core::fmt;
use core::str::FromStr;

use crate::random::Random;

/// A random idempotency key: the identity of one logical request, sent with
/// every attempt of it so the server can recognise a replay.
///
/// A non-idempotent method (`charge`) becomes safe to retry when each
/// logical call carries a key the server deduplicates on
/// ([`IdempotencyTable`](crate::idempotency::IdempotencyTable)): a replay of
/// a request that already ran gets the stored response instead of running
/// again. That only works if the key is made **once per logical call,
/// before the first attempt**, and reused by every retry — a key made per
/// attempt deduplicates nothing. Pair it with
/// [`Idempotency::Keyed`](crate::Idempotency::Keyed) so that
/// [`Retry`](crate::Retry) allows replaying a failure that may have run.
///
/// The key has the layout of a UUID version 4 (RFC 9562 §5.4): 128 bits
/// drawn from a [`Random`], of which the 6 version and variant bits
/// are then set. Its text form ([`Display`](fmt::Display),
/// [`to_ascii`](Self::to_ascii)) is the canonical 36-character lower-case
/// hyphenated layout, well under the 255 characters Stripe accepts in an
/// `Idempotency-Key` header. `fastrand` is a fast, non-cryptographic
/// generator (wyrand, 64 bits of state): keys drawn from one generator do
/// not repeat, and two generators give different keys as long as their
/// seeds differ — so seed every device differently. Keys are unique, not
/// secret: a server should scope them to the caller (key its table by
/// `(account, key)`, as Stripe scopes keys to an account).
///
/// # Example
/// ```
/// use stormguard::{IdempotencyKey, Random};
///
/// let mut rng = Random::with_seed(7); // firmware: seed from a hardware RNG
/// let key = IdempotencyKey::from_rng(&mut rng);
/// let header = key.to_string(); // e.g. "1c5a…-…": send as `Idempotency-Key`
/// assert_eq!(header.len(), 36);
/// assert_eq!(header.parse::<IdempotencyKey>(), Ok(key));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdempotencyKey {
    /// Big-endian (UUID byte order): byte alignment keeps table slots
    /// small, and the derived `Ord` is the numeric order.
    bytes: [u8; 16],
}

impl IdempotencyKey {
    /// The HTTP header that carries the key (Stripe; IETF draft
    /// "The Idempotency-Key HTTP Header Field").
    ///
    /// ```
    /// assert_eq!(stormguard::IdempotencyKey::HEADER, "Idempotency-Key");
    /// ```
    pub const HEADER: &'static str = "Idempotency-Key";

    /// The length of the text form, in bytes (ASCII characters).
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// assert_eq!(IdempotencyKey::from_u128(0).to_string().len(), IdempotencyKey::TEXT_LEN);
    /// ```
    pub const TEXT_LEN: usize = 36;

    /// A fresh key whose bits come from `rng`.
    ///
    /// The way to make keys without `std`: give each device its own seed
    /// (a hardware RNG, a serial number mixed with a boot counter), or two
    /// devices will send the same keys.
    ///
    /// ```
    /// use stormguard::{IdempotencyKey, Random};
    /// let mut rng = Random::with_seed(1);
    /// let (a, b) = (IdempotencyKey::from_rng(&mut rng), IdempotencyKey::from_rng(&mut rng));
    /// assert_ne!(a, b);
    /// // The same seed gives the same keys: reproducible tests.
    /// assert_eq!(IdempotencyKey::from_rng(&mut Random::with_seed(1)), a);
    /// ```
    pub fn from_rng(rng: &mut Random) -> Self {
        let high = u128::from(rng.u64(0..=u64::MAX));
        let low = u128::from(rng.u64(0..=u64::MAX));
        IdempotencyKey::v4((high << 64) | low)
    }

    /// A fresh key from `fastrand`'s thread-local generator.
    ///
    /// That generator is seeded per thread from the standard library's
    /// random hasher keys, and every key advances it, so keys made in one
    /// thread never repeat and two threads or processes repeat each other's
    /// only if their generators' 64-bit states happen to overlap.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// assert_ne!(IdempotencyKey::new(), IdempotencyKey::new());
    /// ```
    #[cfg(feature = "std")]
    #[cfg_attr(docsrs, doc(cfg(feature = "std")))]
    #[allow(clippy::new_without_default)] // a random `Default` would surprise
    pub fn new() -> Self {
        let high = u128::from(fastrand::u64(..));
        let low = u128::from(fastrand::u64(..));
        IdempotencyKey::v4((high << 64) | low)
    }

    /// The key whose 128 bits are `bits`, most significant first, as they
    /// are; no version or variant bits are set.
    ///
    /// For keys stored or received as numbers; a key parsed from text keeps
    /// its bits the same way, whatever its UUID version.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// let key = IdempotencyKey::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
    /// assert_eq!(key.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
    /// ```
    pub const fn from_u128(bits: u128) -> Self {
        IdempotencyKey {
            bytes: bits.to_be_bytes(),
        }
    }

    /// The key's 128 bits.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// assert_eq!(IdempotencyKey::from_u128(42).as_u128(), 42);
    /// ```
    pub const fn as_u128(self) -> u128 {
        u128::from_be_bytes(self.bytes)
    }

    /// The key from its 16 bytes in UUID (big-endian) order.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// let key = IdempotencyKey::from_bytes([0xab; 16]);
    /// assert_eq!(key.to_bytes(), [0xab; 16]);
    /// ```
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        IdempotencyKey { bytes }
    }

    /// The key's 16 bytes in UUID (big-endian) order: the compact form to
    /// store or to send in a binary protocol.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// assert_eq!(IdempotencyKey::from_u128(1).to_bytes()[15], 1);
    /// ```
    pub const fn to_bytes(self) -> [u8; 16] {
        self.bytes
    }

    /// The canonical text form as ASCII bytes: 36 characters, lower-case
    /// hex in the 8-4-4-4-12 layout of RFC 9562.
    ///
    /// No allocation: ready to copy into a header buffer on a target
    /// without a heap.
    ///
    /// ```
    /// use stormguard::IdempotencyKey;
    /// let key = IdempotencyKey::from_u128(u128::MAX);
    /// assert_eq!(&key.to_ascii(), b"ffffffff-ffff-ffff-ffff-ffffffffffff");
    /// ```
    pub const fn to_ascii(self) -> [u8; 36] {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let bits = self.as_u128();
        let mut out = [b'-'; 36];
        let mut digit = 0; // 0..32, most significant nibble first
        let mut at = 0;
        while at < 36 {
            if !is_hyphen_position(at) {
                let nibble = (bits >> (124 - 4 * digit)) & 0xf;
                out[at] = HEX[nibble as usize];
                digit += 1;
            }
            at += 1;
        }
        out
    }

    /// Parses the canonical text form back into a key.
    ///
    /// Accepts exactly the 8-4-4-4-12 hyphenated layout of RFC 9562, with
    /// hex digits in either case (RFC 9562 §4: "case insensitive on
    /// input"), and any UUID version: a server may receive version 7 keys
    /// from other clients. Anything else is a [`KeyParseError`] saying what
    /// and where — never a panic, whatever the bytes.
    ///
    /// # Errors
    /// [`KeyParseError::Length`] when `text` is not 36 bytes long,
    /// [`KeyParseError::Hyphen`] when a hyphen is missing,
    /// [`KeyParseError::NotHex`] when a digit is not a hex digit.
    ///
    /// ```
    /// use stormguard::{IdempotencyKey, KeyParseError};
    /// let key = IdempotencyKey::parse(b"1C5A07F2-9B3E-4D21-8F00-0123456789AB")?;
    /// assert_eq!(key.to_string(), "1c5a07f2-9b3e-4d21-8f00-0123456789ab");
    /// assert_eq!(IdempotencyKey::parse(b"1c5a"), Err(KeyParseError::Length { found: 4 }));
    /// assert_eq!(
    ///     IdempotencyKey::parse(b"1c5a07f2-9b3e-4d21-8f00-0123456789ag"),
    ///     Err(KeyParseError::NotHex { at: 35 }),
    /// );
    /// # Ok::<(), KeyParseError>(())
    /// ```
    pub const fn parse(text: &[u8]) -> Result<Self, KeyParseError> {
        if text.len() != IdempotencyKey::TEXT_LEN {
            return Err(KeyParseError::Length { found: text.len() });
        }
        let mut bits: u128 = 0;
        let mut at = 0;
        while at < IdempotencyKey::TEXT_LEN {
            let byte = text[at];
            if is_hyphen_position(at) {
                if byte != b'-' {
                    return Err(KeyParseError::Hyphen { at });
                }
            } else {
                let nibble = match byte {
                    b'0'..=b'9' => byte - b'0',
                    b'a'..=b'f' => byte - b'a' + 10,
                    b'A'..=b'F' => byte - b'A' + 10,
                    _ => return Err(KeyParseError::NotHex { at }),
                };
                bits = (bits << 4) | nibble as u128;
            }
            at += 1;
        }
        Ok(IdempotencyKey::from_u128(bits))
    }

    /// The UUID version number (bits 48–51): 4 for every key this crate
    /// makes; a parsed key keeps whatever it was sent with.
    ///
    /// ```
    /// use stormguard::{IdempotencyKey, Random};
    /// assert_eq!(IdempotencyKey::from_rng(&mut Random::with_seed(3)).version(), 4);
    /// ```
    pub const fn version(self) -> u8 {
        self.bytes[6] >> 4
    }

    /// Sets the version (4) and variant (0b10) bits of RFC 9562 §5.4.
    const fn v4(bits: u128) -> Self {
        const VERSION_MASK: u128 = 0xf << 76;
        const VARIANT_MASK: u128 = 0b11 << 62;
        let bits = (bits & !VERSION_MASK & !VARIANT_MASK) | (0x4 << 76) | (0b10 << 62);
        IdempotencyKey::from_u128(bits)
    }
}

/// The text positions of the four hyphens in the 8-4-4-4-12 layout.
const fn is_hyphen_position(at: usize) -> bool {
    matches!(at, 8 | 13 | 18 | 23)
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ascii = self.to_ascii();
        match core::str::from_utf8(&ascii) {
            Ok(text) => f.pad(text),
            Err(_) => Err(fmt::Error),
        }
    }
}

impl fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IdempotencyKey({self})")
    }
}

impl FromStr for IdempotencyKey {
    type Err = KeyParseError;

    /// Same as [`IdempotencyKey::parse`].
    fn from_str(text: &str) -> Result<Self, KeyParseError> {
        IdempotencyKey::parse(text.as_bytes())
    }
}

/// Why a text is not an [`IdempotencyKey`].
///
/// A server parses the key from a header a client controls, so every way
/// it can be malformed is a value — answered with `400 Bad Request` — and
/// never a panic. Positions are byte offsets into the text.
///
/// ```
/// use stormguard::{IdempotencyKey, KeyParseError};
/// let err = "not a key".parse::<IdempotencyKey>().unwrap_err();
/// assert_eq!(err, KeyParseError::Length { found: 9 });
/// assert_eq!(err.to_string(), "invalid idempotency key: expected 36 characters, found 9");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyParseError {
    /// The text is not 36 bytes long.
    Length {
        /// The length found, in bytes.
        found: usize,
    },
    /// The byte at `at` (8, 13, 18 or 23) should be a hyphen.
    Hyphen {
        /// Its byte offset.
        at: usize,
    },
    /// The byte at `at` should be a hex digit.
    NotHex {
        /// Its byte offset.
        at: usize,
    },
}

impl fmt::Display for KeyParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid idempotency key: ")?;
        match *self {
            KeyParseError::Length { found } => {
                write!(f, "expected 36 characters, found {found}")
            }
            KeyParseError::Hyphen { at } => write!(f, "expected '-' at byte {at}"),
            KeyParseError::NotHex { at } => write!(f, "expected a hex digit at byte {at}"),
        }
    }
}

impl core::error::Error for KeyParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_variant_bits_are_set() {
        for seed in 0..64 {
            let key = IdempotencyKey::from_rng(&mut Random::with_seed(seed));
            let text = key.to_ascii();
            assert_eq!(text[14], b'4', "version nibble");
            assert!(matches!(text[19], b'8' | b'9' | b'a' | b'b'), "variant");
            assert_eq!(key.version(), 4);
        }
    }

    #[test]
    fn all_zero_and_all_one_bits_format_exactly() {
        assert_eq!(
            &IdempotencyKey::from_u128(0).to_ascii(),
            b"00000000-0000-0000-0000-000000000000"
        );
        assert_eq!(
            IdempotencyKey::v4(u128::MAX).to_ascii(),
            *b"ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
        assert_eq!(
            IdempotencyKey::v4(0).to_ascii(),
            *b"00000000-0000-4000-8000-000000000000"
        );
    }

    #[test]
    fn errors_name_the_first_bad_byte() {
        let good = *b"01234567-89ab-cdef-0123-456789abcdef";
        for at in 0..36 {
            let mut bad = good;
            bad[at] = b'x';
            let expected = if is_hyphen_position(at) {
                KeyParseError::Hyphen { at }
            } else {
                KeyParseError::NotHex { at }
            };
            assert_eq!(IdempotencyKey::parse(&bad), Err(expected));
        }
        // A hyphen where a digit belongs is not a hex digit.
        let mut shifted = good;
        shifted[7] = b'-';
        assert_eq!(
            IdempotencyKey::parse(&shifted),
            Err(KeyParseError::NotHex { at: 7 })
        );
    }
}
