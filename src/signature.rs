//! Webhook signatures: one place that computes and compares them.
//!
//! Each provider says which algorithm, which bytes are the signature and which bytes were
//! signed (Meta: the raw body; Twilio: the URL plus sorted form parameters; our generic call
//! webhook: the raw body). Comparison is always constant-time (`Mac::verify_slice`).

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// How a provider encodes its signature header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// `sha256=<lowercase hex HMAC-SHA256>` (Meta's `X-Hub-Signature-256`, ours).
    HmacSha256Hex,
    /// `<base64 HMAC-SHA1>` (Twilio's `X-Twilio-Signature`).
    HmacSha1Base64,
}

/// Why a signature did not verify; the text is safe to return to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the {0} header is missing; sign the request with the shared secret")]
    Missing(&'static str),
    #[error("the {0} header is malformed: {1}")]
    Malformed(&'static str, &'static str),
    #[error(
        "the {0} signature does not match the request; check the shared secret and that the body is sent unchanged"
    )]
    Mismatch(&'static str),
    /// A signing scheme Ringback does not implement; the text says what to change.
    #[error("{0}")]
    Unsupported(&'static str),
}

/// Checks `header_value` against an HMAC of `signed` under `secret`.
pub fn verify(
    algorithm: Algorithm,
    header: &'static str,
    header_value: Option<&str>,
    secret: &[u8],
    signed: &[&[u8]],
) -> Result<(), SignatureError> {
    let value = header_value.map(str::trim).filter(|v| !v.is_empty());
    let value = value.ok_or(SignatureError::Missing(header))?;
    match algorithm {
        Algorithm::HmacSha256Hex => {
            let hex_part = value
                .strip_prefix("sha256=")
                .ok_or(SignatureError::Malformed(header, "expected 'sha256=<hex>'"))?;
            let expected = hex::decode(hex_part)
                .map_err(|_| SignatureError::Malformed(header, "the digest is not hex"))?;
            let mut mac =
                Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
            signed.iter().for_each(|part| mac.update(part));
            mac.verify_slice(&expected)
                .map_err(|_| SignatureError::Mismatch(header))
        }
        Algorithm::HmacSha1Base64 => {
            let expected = base64::engine::general_purpose::STANDARD
                .decode(value)
                .map_err(|_| SignatureError::Malformed(header, "the digest is not base64"))?;
            let mut mac =
                Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
            signed.iter().for_each(|part| mac.update(part));
            mac.verify_slice(&expected)
                .map_err(|_| SignatureError::Mismatch(header))
        }
    }
}

/// `sha256=<hex>` over `body`: what Meta puts in `X-Hub-Signature-256` and what Ringback's
/// generic call webhook expects in `X-Ringback-Signature`.
pub fn sign_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Base64 HMAC-SHA1 over the concatenated parts: Twilio's `X-Twilio-Signature`.
pub fn sign_sha1_base64(secret: &[u8], parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC accepts any key length");
    parts.iter().for_each(|part| mac.update(part));
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time equality for tokens (verify token, API keys).
pub fn tokens_equal(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_round_trip_and_mismatch() {
        let sig = sign_sha256_hex(b"secret", b"{}");
        let h = "X-Hub-Signature-256";
        assert!(verify(Algorithm::HmacSha256Hex, h, Some(&sig), b"secret", &[b"{}"]).is_ok());
        assert_eq!(
            verify(Algorithm::HmacSha256Hex, h, Some(&sig), b"other", &[b"{}"]),
            Err(SignatureError::Mismatch(h))
        );
        assert_eq!(
            verify(Algorithm::HmacSha256Hex, h, None, b"secret", &[b"{}"]),
            Err(SignatureError::Missing(h))
        );
        assert!(matches!(
            verify(
                Algorithm::HmacSha256Hex,
                h,
                Some("md5=00"),
                b"secret",
                &[b"{}"]
            ),
            Err(SignatureError::Malformed(..))
        ));
    }

    /// Twilio's documented example, reproduced with the official `twilio` Python library.
    #[test]
    fn twilio_documented_vector() {
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        // The sorted POST parameters, each name followed by its value.
        let params =
            "CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212";
        let sig = sign_sha1_base64(b"12345", &[url.as_bytes(), params.as_bytes()]);
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
    }
}
