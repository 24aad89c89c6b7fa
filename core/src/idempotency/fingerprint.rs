//! A stable fingerprint of a request's payload.

/// The fixed SipHash key of [`fingerprint`]: part of its definition, so a
/// fingerprint stays the same across processes, machines and versions.
const KEY: (u64, u64) = (0x7374_6f72_6d67_7561, 0x7264_2066_7072_696e);

/// A 64-bit fingerprint of `payload` for [`IdempotencyTable`]: SipHash-2-4
/// (Aumasson and Bernstein) of the bytes under a fixed key.
///
/// The table compares fingerprints to tell a retry (same key, same
/// payload: replay the stored answer) from a client bug (same key, another
/// payload: answer 422, as the IETF Idempotency-Key draft says). A weak
/// fingerprint turns that bug into a silent replay of the wrong answer —
/// Python's `hash()`, for one, maps `-1` and `-2`, or `0` and `2**61 - 1`,
/// to the same value, and differs between processes for strings. This one
/// is a function of the bytes alone: the same in every process, machine and
/// version of stormguard, so servers of a fleet sharing a store agree; two
/// different payloads share a fingerprint with probability about 2⁻⁶⁴. The
/// key is public, so a client can craft two payloads with one fingerprint —
/// but only under its own idempotency key, where it fools nobody but itself.
///
/// Fingerprint the request's canonical bytes (the body as sent, or a
/// canonical encoding of the fields that matter).
///
/// ```
/// use stormguard::fingerprint;
/// assert_eq!(fingerprint(b"amount=30"), fingerprint(b"amount=30"));
/// assert_ne!(fingerprint(b"amount=30"), fingerprint(b"amount=31"));
/// assert_ne!(fingerprint(b""), fingerprint(b"\0"));
/// ```
///
/// [`IdempotencyTable`]: crate::IdempotencyTable
pub fn fingerprint(payload: &[u8]) -> u64 {
    siphash24(KEY, payload)
}

/// SipHash-2-4 with a 64-bit output.
fn siphash24((k0, k1): (u64, u64), msg: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut chunks = msg.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let m = u64::from_le_bytes(word);
        v[3] ^= m;
        rounds(&mut v, 2);
        v[0] ^= m;
    }
    let rest = chunks.remainder();
    let mut last = [0u8; 8];
    last[..rest.len()].copy_from_slice(rest);
    // The length's low byte goes in the last word's top byte (wrapping, as
    // the specification says).
    last[7] = msg.len() as u8;
    let m = u64::from_le_bytes(last);
    v[3] ^= m;
    rounds(&mut v, 2);
    v[0] ^= m;
    v[2] ^= 0xff;
    rounds(&mut v, 4);
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn rounds(v: &mut [u64; 4], n: usize) {
    for _ in 0..n {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference vectors of the SipHash paper (appendix A, and the
    /// authors' `vectors.h`): key 00 01 … 0f, messages 00 01 … (n−1).
    #[test]
    fn reference_vectors() {
        let key = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);
        let msg: [u8; 64] = core::array::from_fn(|i| i as u8);
        assert_eq!(siphash24(key, &msg[..0]), 0x726f_db47_dd0e_0e31);
        assert_eq!(siphash24(key, &msg[..15]), 0xa129_ca61_49be_45e5);
        assert_eq!(siphash24(key, &msg[..1]), 0x74f8_39c5_93dc_67fd);
        assert_eq!(siphash24(key, &msg[..8]), 0x93f5_f579_9a93_2462);
    }

    #[test]
    #[allow(deprecated)] // the std implementation, as a second reference
    fn agrees_with_core_siphasher() {
        use core::hash::Hasher;
        for len in 0..40 {
            let msg: [u8; 40] = core::array::from_fn(|i| (i * 7 + len) as u8);
            let mut h = core::hash::SipHasher::new_with_keys(KEY.0, KEY.1);
            h.write(&msg[..len]);
            assert_eq!(fingerprint(&msg[..len]), h.finish(), "{len}");
        }
    }

    #[test]
    fn fixed_value() {
        // A change of key or algorithm would break every stored fingerprint.
        assert_eq!(fingerprint(b"stormguard"), FINGERPRINT_OF_STORMGUARD);
    }

    const FINGERPRINT_OF_STORMGUARD: u64 = 0x8cc0_68c5_ba36_5582;
}
