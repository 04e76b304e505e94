//! `X-LivePerson-Signature`: an HMAC of the exact request body bytes, keyed with the app
//! installation's client secret.
//!
//! LivePerson sends `sha1=` followed by the standard base64 (with padding) of HMAC-SHA1. Some
//! accounts get HMAC-SHA256 (`sha256=`), and the encoding can be hexadecimal; the hex case is
//! not documented. [`verify`] accepts all of these, and compares in constant time.
//!
//! ```
//! use lpdrop_liveperson::webhook::signature::{Algorithm, Encoding, sign, verify};
//! let body = br#"{"kind":"notification"}"#;
//! let header = sign("secret", body, Algorithm::Sha256, Encoding::Hex);
//! assert!(header.starts_with("sha256="));
//! assert!(verify("secret", body, &header).is_ok());
//! assert!(verify("secret", b"{}", &header).is_err());
//! ```

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// The header's name (HTTP header names are case-insensitive).
pub const HEADER: &str = "x-liveperson-signature";

/// The hash under the HMAC, named by the header's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `sha1=`: what LivePerson sends by default.
    Sha1,
    /// `sha256=`: available for some accounts.
    Sha256,
}

impl Algorithm {
    pub fn prefix(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1=",
            Algorithm::Sha256 => "sha256=",
        }
    }
}

/// How the digest is written after the prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Standard base64 with padding: LivePerson's default.
    Base64,
    /// Lower-case hexadecimal (upper case is accepted too).
    Hex,
}

/// Why a signature was refused. Says nothing about the expected value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `X-LivePerson-Signature` header.
    Missing,
    /// Not `sha1=` or `sha256=` followed by base64 or hex of the right length.
    Malformed,
    /// Well formed, but not the HMAC of this body with this secret.
    Mismatch,
}

impl Refusal {
    /// A short label for metrics and logs.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Missing => "signature_missing",
            Refusal::Malformed => "signature_malformed",
            Refusal::Mismatch => "signature_mismatch",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Missing => "no X-LivePerson-Signature header",
            Refusal::Malformed => {
                "X-LivePerson-Signature is not sha1= or sha256= followed by base64 or hex"
            }
            Refusal::Mismatch => "X-LivePerson-Signature does not match the body and the secret",
        })
    }
}

impl std::error::Error for Refusal {}

/// The header value LivePerson would send for `body` signed with `secret`.
pub fn sign(secret: &str, body: &[u8], algorithm: Algorithm, encoding: Encoding) -> String {
    let digest = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<Sha1>>(secret, body)
            .finalize()
            .into_bytes()
            .to_vec(),
        Algorithm::Sha256 => mac::<Hmac<Sha256>>(secret, body)
            .finalize()
            .into_bytes()
            .to_vec(),
    };
    let encoded = match encoding {
        Encoding::Base64 => STANDARD.encode(&digest),
        Encoding::Hex => hex::encode(&digest),
    };
    format!("{}{encoded}", algorithm.prefix())
}

/// Checks `header` (the `X-LivePerson-Signature` value) against `body`, the exact bytes
/// received, before anything parses them. The comparison is constant-time.
pub fn verify(secret: &str, body: &[u8], header: &str) -> Result<(), Refusal> {
    let header = header.trim();
    let (algorithm, encoded) = if let Some(rest) = strip_prefix_ignore_case(header, "sha1=") {
        (Algorithm::Sha1, rest)
    } else if let Some(rest) = strip_prefix_ignore_case(header, "sha256=") {
        (Algorithm::Sha256, rest)
    } else {
        return Err(Refusal::Malformed);
    };
    let digest_len = match algorithm {
        Algorithm::Sha1 => 20,
        Algorithm::Sha256 => 32,
    };
    // Hex is exactly twice the digest; base64 of 20 or 32 bytes is 28 or 44 characters, so
    // the two never have the same length and the length says which encoding it is.
    let expected = if encoded.len() == digest_len * 2 {
        hex::decode(encoded).map_err(|_| Refusal::Malformed)?
    } else {
        STANDARD.decode(encoded).map_err(|_| Refusal::Malformed)?
    };
    if expected.len() != digest_len {
        return Err(Refusal::Malformed);
    }
    let checked = match algorithm {
        Algorithm::Sha1 => mac::<Hmac<Sha1>>(secret, body).verify_slice(&expected),
        Algorithm::Sha256 => mac::<Hmac<Sha256>>(secret, body).verify_slice(&expected),
    };
    checked.map_err(|_| Refusal::Mismatch)
}

/// An HMAC keyed with the secret's UTF-8 bytes, over `body`.
fn mac<M: Mac + hmac::digest::KeyInit>(secret: &str, body: &[u8]) -> M {
    let mut mac = <M as Mac>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    mac
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_algorithm_and_encoding_round_trips() {
        let body = "Merci 👍🏽 — ça marche".as_bytes();
        for algorithm in [Algorithm::Sha1, Algorithm::Sha256] {
            for encoding in [Encoding::Base64, Encoding::Hex] {
                let header = sign("s3cret", body, algorithm, encoding);
                assert_eq!(verify("s3cret", body, &header), Ok(()), "{header}");
                assert_eq!(verify("other", body, &header), Err(Refusal::Mismatch));
                let upper = header.to_uppercase();
                if encoding == Encoding::Hex {
                    assert_eq!(verify("s3cret", body, &upper), Ok(()), "{upper}");
                }
            }
        }
    }

    #[test]
    fn malformed_headers_are_refused_as_such() {
        for header in [
            "",
            "sha1",
            "md5=abcd",
            "sha1=not base64!",
            "sha256=AAAA",
            "sha1=zz",
        ] {
            assert_eq!(
                verify("s", b"x", header),
                Err(Refusal::Malformed),
                "{header:?}"
            );
        }
    }
}
