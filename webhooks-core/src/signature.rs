//! Signed deliveries, per the Standard Webhooks specification: a receiver can tell our
//! requests from forged ones, and a replayed request from a fresh one.
//!
//! A hook with a secret (`whsec_` and the key in base64) has every try sent with
//! `webhook-timestamp` (unix seconds, taken when the try is sent, so a retry hours later is not
//! refused as stale) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256 of
//! `<webhook-id>.<timestamp>.<body>`. While a rotated-out secret is in its grace period both
//! sign, space-separated, so receivers can switch keys at their own pace. [`verify`] is the
//! receiver's side, for Rust receivers and for `webhooks listen`.
//!
//! A secret never leaves through `Debug` or `Display`; only [`SigningSecret::to_text`] spells
//! it, for the one place that hands it to its owner.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// What every secret's text starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// Random bytes in a generated secret.
const GENERATED_BYTES: usize = 32;

/// Key lengths accepted from users, in bytes (the specification asks for 24 to 64).
const KEY_BYTES: std::ops::RangeInclusive<usize> = 24..=64;

/// How far a timestamp may be from the receiver's clock by default (the specification's).
pub const DEFAULT_TOLERANCE_SECS: i64 = 5 * 60;

/// A hook's signing key.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(Vec<u8>);

/// Why a secret's text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error("a secret starts with {SECRET_PREFIX}")]
    NoPrefix,
    #[error("a secret is {SECRET_PREFIX} and base64")]
    NotBase64,
    #[error("a secret's key is 24 to 64 bytes")]
    BadLength,
    #[error("secret is \"generate\", a whsec_ secret, or null")]
    NotAString,
}

impl SigningSecret {
    /// Reads `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, SecretError> {
        let encoded = text
            .strip_prefix(SECRET_PREFIX)
            .ok_or(SecretError::NoPrefix)?;
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| SecretError::NotBase64)?;
        if !KEY_BYTES.contains(&key.len()) {
            return Err(SecretError::BadLength);
        }
        Ok(SigningSecret(key))
    }

    /// A new random secret.
    pub fn generate() -> Self {
        let mut key = vec![0u8; GENERATED_BYTES];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut key);
        SigningSecret(key)
    }

    /// `whsec_<base64>`: for storing, and for its owner only.
    pub fn to_text(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of id.timestamp.body>`.
    pub fn sign(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> String {
        format!(
            "v1,{}",
            STANDARD.encode(self.mac(webhook_id, timestamp, body))
        )
    }

    fn mac(&self, webhook_id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("any key length");
        mac.update(webhook_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.finalize().into_bytes().to_vec()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(..)")
    }
}

/// A hook's secrets, from its private fields: `pvt_signing_secret`, and while a rotation's
/// grace period lasts, `pvt_signing_secret_previous` until `pvt_signing_secret_previous_until`
/// (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signing {
    pub current: SigningSecret,
    pub previous: Option<(SigningSecret, i64)>,
}

impl Signing {
    /// The hook's signing, or `None` for an unsigned hook (or a stored secret that does not
    /// parse, which is sent unsigned rather than not at all).
    pub fn from_doc(doc: &crate::Doc) -> Option<Signing> {
        let current = SigningSecret::parse(doc.str("pvt_signing_secret")?).ok()?;
        let previous = doc
            .str("pvt_signing_secret_previous")
            .and_then(|t| SigningSecret::parse(t).ok())
            .zip(doc.i64("pvt_signing_secret_previous_until"));
        Some(Signing { current, previous })
    }

    /// The secrets that sign a try sent at `now` (unix seconds): the current one, and the
    /// previous one until its grace period ends.
    pub fn secrets_at(&self, now: i64) -> impl Iterator<Item = &SigningSecret> {
        let previous = self
            .previous
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(secret, _)| secret);
        std::iter::once(&self.current).chain(previous)
    }
}

/// What a hook body's `secret` asks for: `"generate"`, a `whsec_` secret of the caller's, or
/// `null` to stop signing. It is never stored as a public field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretChange {
    Set(SigningSecret),
    Remove,
}

impl SecretChange {
    pub fn from_value(value: &serde_json::Value) -> Result<Self, SecretError> {
        match value {
            serde_json::Value::Null => Ok(SecretChange::Remove),
            serde_json::Value::String(s) if s == "generate" => {
                Ok(SecretChange::Set(SigningSecret::generate()))
            }
            serde_json::Value::String(s) => SigningSecret::parse(s).map(SecretChange::Set),
            _ => Err(SecretError::NotAString),
        }
    }

    /// Writes the change into a hook document's private fields, ending any rotation.
    pub fn apply(self, doc: &mut crate::Doc) {
        for key in [
            "pvt_signing_secret",
            "pvt_signing_secret_previous",
            "pvt_signing_secret_previous_until",
        ] {
            doc.remove(key);
        }
        if let SecretChange::Set(secret) = self {
            doc.set("pvt_signing_secret", secret.to_text());
        }
    }
}

/// Rotates a hook document's secret to `new`: the current one keeps signing beside it until
/// `now + grace_secs` (unix seconds). A hook that did not sign starts with `new` alone.
pub fn rotate(doc: &mut crate::Doc, new: &SigningSecret, grace_secs: i64, now: i64) {
    match doc.str("pvt_signing_secret").map(str::to_owned) {
        Some(current) if grace_secs > 0 => {
            doc.set("pvt_signing_secret_previous", current);
            doc.set(
                "pvt_signing_secret_previous_until",
                now.saturating_add(grace_secs),
            );
        }
        _ => {
            doc.remove("pvt_signing_secret_previous");
            doc.remove("pvt_signing_secret_previous_until");
        }
    }
    doc.set("pvt_signing_secret", new.to_text());
}

/// The `webhook-signature` header of one try: one signature per secret, space-separated.
pub fn signature_header<'a>(
    secrets: impl IntoIterator<Item = &'a SigningSecret>,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .into_iter()
        .map(|s| s.sign(webhook_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Why a request did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the timestamp is more than {0} s from now")]
    Stale(i64),
    #[error("no signature matches")]
    NoMatch,
}

/// The receiver's check: `header` (a `webhook-signature` value) holds a `v1` signature by
/// `secret` of this id, timestamp and body, and the timestamp is within `tolerance_secs` of
/// `now`. Signatures are compared in constant time.
pub fn verify(
    secret: &SigningSecret,
    header: &str,
    webhook_id: &str,
    timestamp: i64,
    body: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), VerifyError> {
    if (now - timestamp).abs() > tolerance_secs {
        return Err(VerifyError::Stale(tolerance_secs));
    }
    let expected = secret.mac(webhook_id, timestamp, body);
    let matches = header
        .split(' ')
        .filter_map(|sig| sig.strip_prefix("v1,"))
        .filter_map(|b64| STANDARD.decode(b64).ok())
        .any(|given| constant_time_eq(&given, &expected));
    if matches {
        Ok(())
    } else {
        Err(VerifyError::NoMatch)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The specification's own example: its secret, id, timestamp, body and signature.
    #[test]
    fn the_specifications_example_signs_and_verifies() {
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let (id, ts) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330);
        let body = br#"{"test": 2432232314}"#;
        let sig = secret.sign(id, ts, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        assert_eq!(verify(&secret, &sig, id, ts, body, ts + 10, 300), Ok(()));
    }

    #[test]
    fn tampering_staleness_and_other_secrets_are_refused() {
        let secret = SigningSecret::generate();
        let other = SigningSecret::generate();
        let sig = secret.sign("msg_1", 1000, b"body");
        assert_eq!(
            verify(&secret, &sig, "msg_1", 1000, b"bodY", 1000, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&other, &sig, "msg_1", 1000, b"body", 1000, 300),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&secret, &sig, "msg_1", 1000, b"body", 1301, 300),
            Err(VerifyError::Stale(300))
        );
    }

    #[test]
    fn during_a_rotation_either_secret_verifies_the_header() {
        let (old, new) = (SigningSecret::generate(), SigningSecret::generate());
        let header = signature_header([&new, &old], "msg_1", 7, b"x");
        assert_eq!(header.split(' ').count(), 2);
        for secret in [&old, &new] {
            assert_eq!(verify(secret, &header, "msg_1", 7, b"x", 7, 300), Ok(()));
        }
    }

    #[test]
    fn secrets_read_back_as_written_and_never_print() {
        let secret = SigningSecret::generate();
        assert_eq!(SigningSecret::parse(&secret.to_text()).unwrap(), secret);
        assert_eq!(format!("{secret:?}"), "SigningSecret(..)");
        assert_eq!(
            SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            Err(SecretError::NoPrefix)
        );
        assert_eq!(
            SigningSecret::parse("whsec_not base64!"),
            Err(SecretError::NotBase64)
        );
        assert_eq!(
            SigningSecret::parse("whsec_c2hvcnQ="),
            Err(SecretError::BadLength)
        );
    }
}
