//! SHA-256 digests as lower-case hex: the one place the crate turns a digest into text
//! (secret hashes, entity tags, the filter digest cursors carry).

use sha2::{Digest, Sha256};

/// The first `bytes` bytes of the SHA-256 of `data`, in lower-case hex (`2 * bytes`
/// characters); all 32 bytes when `bytes` is larger.
pub fn sha256_hex(data: &[u8], bytes: usize) -> String {
    let digest = Sha256::digest(data);
    hex::encode(&digest[..bytes.min(digest.len())])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_is_the_lower_case_hex_of_the_digests_prefix() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        let full = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        assert_eq!(sha256_hex(b"abc", 32), full);
        assert_eq!(sha256_hex(b"abc", 8), &full[..16]);
        assert_eq!(sha256_hex(b"abc", 64), full);
    }
}
