//! Secrets: generation of tokens, codes and client secrets from the OS CSPRNG, their SHA-256
//! digests (the only form the database ever holds), constant-time comparison, and keyed
//! derivation of refresh-rotation successors.
//!
//! Every generated secret carries at least 160 bits of entropy (RFC 6749 §10.10 asks for
//! guessing odds of at most 2^-128; RFC 9700 §4.x follows). Alphanumeric characters carry
//! log2(62) ≈ 5.95 bits each, so 30 characters are ≈ 178 bits.

use hmac::{Hmac, Mac};
use rand::distributions::{Alphanumeric, Distribution};
use rand::{rngs::OsRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// How a kind of token looks on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFormat {
    /// django-oauth-toolkit style: exactly 30 alphanumeric characters (Angelcam clients may
    /// validate the length).
    Alnum30,
    /// A short type prefix (helps secret scanners) followed by 32 alphanumeric characters
    /// (≈ 190 bits).
    Prefixed(&'static str),
}

pub const CLIENT_ID_LEN: usize = 40;

fn alnum(rng: &mut impl RngCore, n: usize) -> String {
    Alphanumeric
        .sample_iter(rng)
        .take(n)
        .map(char::from)
        .collect()
}

fn render(rng: &mut impl RngCore, format: TokenFormat) -> String {
    match format {
        TokenFormat::Alnum30 => alnum(rng, 30),
        TokenFormat::Prefixed(prefix) => {
            let mut s = String::with_capacity(prefix.len() + 32);
            s.push_str(prefix);
            s.push_str(&alnum(rng, 32));
            s
        }
    }
}

/// A fresh random token in the given format.
pub fn generate(format: TokenFormat) -> String {
    // ChaCha seeded from the OS once per token: one getrandom call, no per-char syscalls.
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    render(&mut ChaCha20Rng::from_seed(seed), format)
}

/// A new client id: 40 alphanumeric characters (django-oauth-toolkit convention).
pub fn generate_client_id() -> String {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    alnum(&mut ChaCha20Rng::from_seed(seed), CLIENT_ID_LEN)
}

/// A new client secret: `cgs_` + 40 alphanumeric characters (≈ 238 bits).
pub fn generate_client_secret() -> String {
    let mut seed = [0u8; 32];
    OsRng.fill_bytes(&mut seed);
    format!("cgs_{}", alnum(&mut ChaCha20Rng::from_seed(seed), 40))
}

/// Random key material (e.g. the server's HMAC key).
pub fn random_key() -> Vec<u8> {
    let mut k = vec![0u8; 32];
    OsRng.fill_bytes(&mut k);
    k
}

/// SHA-256 digest of a presented secret: the lookup key in the database.
pub fn digest(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Constant-time equality of two byte strings (length may leak, contents do not).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Derives a token deterministically from `input` under `key`: HMAC-SHA256(key, label ‖ input)
/// seeds a ChaCha20 stream rendered in `format`. Every node sharing the key derives the same
/// value, which is how a retried refresh gets the *same* successor pair without any plaintext
/// token stored (DESIGN.md §4). The output is as unpredictable as the key is secret.
pub fn derive(key: &[u8], label: &str, input: &str, format: TokenFormat) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(m) => m,
        // HMAC accepts keys of any length; this arm is unreachable in practice.
        Err(_) => return generate(format),
    };
    mac.update(label.as_bytes());
    mac.update(&[0]);
    mac.update(input.as_bytes());
    let seed: [u8; 32] = mac.finalize().into_bytes().into();
    render(&mut ChaCha20Rng::from_seed(seed), format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_lengths() {
        let t = generate(TokenFormat::Alnum30);
        assert_eq!(t.len(), 30);
        assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
        let p = generate(TokenFormat::Prefixed("cgpat_"));
        assert!(p.starts_with("cgpat_"));
        assert_eq!(p.len(), 38);
        assert_eq!(generate_client_id().len(), 40);
        assert_ne!(
            generate(TokenFormat::Alnum30),
            generate(TokenFormat::Alnum30)
        );
    }

    #[test]
    fn derivation_is_deterministic_and_keyed() {
        let a = derive(b"k1", "refresh", "tok", TokenFormat::Alnum30);
        assert_eq!(a, derive(b"k1", "refresh", "tok", TokenFormat::Alnum30));
        assert_ne!(a, derive(b"k2", "refresh", "tok", TokenFormat::Alnum30));
        assert_ne!(a, derive(b"k1", "access", "tok", TokenFormat::Alnum30));
        assert_eq!(a.len(), 30);
    }

    #[test]
    fn digest_is_sha256() {
        assert_eq!(
            hex::encode(digest("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(ct_eq(&digest("x"), &digest("x")));
        assert!(!ct_eq(&digest("x"), &digest("y")));
    }
}
