//! Provider signature schemes (PROTOCOLS.md), pure functions over the raw request:
//! - Retell: `x-retell-signature: v=<ms>,d=<hex>`, `d = HMAC-SHA256(key, raw_body + ms)`;
//! - Telnyx: Ed25519 over `timestamp|raw_body`, `telnyx-signature-ed25519` (base64) and
//!   `telnyx-timestamp` (Unix seconds), the business's public key (base64, 32 bytes);
//! - Twilio: `X-Twilio-Signature = base64(HMAC-SHA1(auth token, url + sorted key+value))`.
//!
//! Comparisons are constant-time (`Mac::verify_slice`, ed25519 verification). Errors say
//! which part was wrong, never the secret or the expected signature.

use base64::Engine;
use hmac::{Hmac, Mac};

/// How far a signed timestamp may be from now (either way) before the request is stale.
pub const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Missing, malformed or wrong signature.
    Signature(String),
    /// Signed, but too old (or from the future): a replay or a skewed clock.
    Stale(String),
}

impl Refused {
    pub fn reason(&self) -> &str {
        match self {
            Refused::Signature(r) | Refused::Stale(r) => r,
        }
    }
}

fn fresh(ts_ms: i64, now_ms: i64, header: &str) -> Result<(), Refused> {
    let skew = now_ms - ts_ms;
    if skew.abs() > MAX_SKEW_MS {
        return Err(Refused::Stale(format!(
            "{header} timestamp is {}s {} now; at most {}s are accepted (a replayed request, or a clock out of sync)",
            skew.abs() / 1000,
            if skew > 0 { "before" } else { "after" },
            MAX_SKEW_MS / 1000
        )));
    }
    Ok(())
}

/// Retell: `v=<ms>,d=<hex>`.
pub fn verify_retell(
    header: Option<&str>,
    body: &[u8],
    key: &str,
    now_ms: i64,
) -> Result<(), Refused> {
    let h = header.ok_or_else(|| Refused::Signature("x-retell-signature header missing".into()))?;
    let (mut v, mut d) = (None, None);
    for part in h.split(',') {
        match part.trim().split_once('=') {
            Some(("v", x)) => v = Some(x),
            Some(("d", x)) => d = Some(x),
            _ => {}
        }
    }
    let (Some(v), Some(d)) = (v, d) else {
        return Err(Refused::Signature(
            "x-retell-signature is not of the form v=<ms>,d=<hex>".into(),
        ));
    };
    let ts: i64 = v.parse().map_err(|_| {
        Refused::Signature("x-retell-signature v= is not epoch milliseconds".into())
    })?;
    let sig = hex::decode(d)
        .map_err(|_| Refused::Signature("x-retell-signature d= is not hex".into()))?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(v.as_bytes());
    mac.verify_slice(&sig).map_err(|_| {
        Refused::Signature(
            "x-retell-signature does not match the body and the business's Retell key".into(),
        )
    })?;
    fresh(ts, now_ms, "x-retell-signature")
}

/// Retell's header for `body` at `ts_ms` (tests and fixtures).
pub fn sign_retell(body: &[u8], key: &str, ts_ms: i64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(body);
    mac.update(ts_ms.to_string().as_bytes());
    format!("v={ts_ms},d={}", hex::encode(mac.finalize().into_bytes()))
}

/// Telnyx: Ed25519 over `timestamp|body`; `public_key` is base64 of the 32-byte key.
pub fn verify_telnyx(
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    public_key: &str,
    now_ms: i64,
) -> Result<(), Refused> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let sig = signature
        .ok_or_else(|| Refused::Signature("telnyx-signature-ed25519 header missing".into()))?;
    let ts =
        timestamp.ok_or_else(|| Refused::Signature("telnyx-timestamp header missing".into()))?;
    let ts_s: i64 = ts
        .trim()
        .parse()
        .map_err(|_| Refused::Signature("telnyx-timestamp is not Unix seconds".into()))?;
    let sig: [u8; 64] = b64
        .decode(sig.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Refused::Signature(
                "telnyx-signature-ed25519 is not a base64 Ed25519 signature (64 bytes)".into(),
            )
        })?;
    let key: [u8; 32] = b64
        .decode(public_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            Refused::Signature(
                "the business's Telnyx public key is not base64 of 32 bytes (copy it from the Telnyx portal)".into(),
            )
        })?;
    let key = ed25519_dalek::VerifyingKey::from_bytes(&key).map_err(|_| {
        Refused::Signature("the business's Telnyx public key is not a valid Ed25519 key".into())
    })?;
    let mut msg = Vec::with_capacity(ts.len() + 1 + body.len());
    msg.extend_from_slice(ts.trim().as_bytes());
    msg.push(b'|');
    msg.extend_from_slice(body);
    key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .map_err(|_| {
            Refused::Signature(
                "telnyx-signature-ed25519 does not verify with the business's Telnyx public key"
                    .into(),
            )
        })?;
    fresh(ts_s.saturating_mul(1000), now_ms, "telnyx-timestamp")
}

/// Twilio: HMAC-SHA1 over the full URL Twilio called, then each POST parameter's name and
/// value, sorted by name (then value).
pub fn twilio_signature(url: &str, params: &[(String, String)], token: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .encode(twilio_mac(url, params, token).finalize().into_bytes())
}

fn twilio_mac(url: &str, params: &[(String, String)], token: &str) -> Hmac<sha1::Sha1> {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    mac
}

pub fn verify_twilio(
    header: Option<&str>,
    url: &str,
    params: &[(String, String)],
    token: &str,
) -> Result<(), Refused> {
    let h = header.ok_or_else(|| Refused::Signature("X-Twilio-Signature header missing".into()))?;
    let got = base64::engine::general_purpose::STANDARD
        .decode(h.trim())
        .map_err(|_| Refused::Signature("X-Twilio-Signature is not base64".into()))?;
    twilio_mac(url, params, token).verify_slice(&got).map_err(|_| {
        Refused::Signature(format!(
            "X-Twilio-Signature does not match the parameters, the business's Twilio auth token and the URL {url} \
             (behind a proxy, set [serve] public_url to the address Twilio calls)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retell_round_trip_wrong_key_and_stale() {
        let body = br#"{"event":"call_ended"}"#;
        let now = 1_700_000_000_000;
        let h = sign_retell(body, "key", now - 1000);
        assert_eq!(verify_retell(Some(&h), body, "key", now), Ok(()));
        assert!(matches!(
            verify_retell(Some(&h), body, "other", now),
            Err(Refused::Signature(_))
        ));
        assert!(matches!(
            verify_retell(Some(&h), b"{}", "key", now),
            Err(Refused::Signature(_))
        ));
        let old = sign_retell(body, "key", now - MAX_SKEW_MS - 1);
        assert!(matches!(
            verify_retell(Some(&old), body, "key", now),
            Err(Refused::Stale(_))
        ));
        assert!(matches!(
            verify_retell(None, body, "key", now),
            Err(Refused::Signature(_))
        ));
        assert!(matches!(
            verify_retell(Some("v=1"), body, "key", now),
            Err(Refused::Signature(_))
        ));
    }

    #[test]
    fn telnyx_round_trip() {
        use ed25519_dalek::Signer;
        let sk = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
        let b64 = base64::engine::general_purpose::STANDARD;
        let pk = b64.encode(sk.verifying_key().to_bytes());
        let body = br#"{"data":{}}"#;
        let now = 1_700_000_000_000;
        let ts = (now / 1000).to_string();
        let sig = b64.encode(
            sk.sign(format!("{ts}|{}", std::str::from_utf8(body).unwrap()).as_bytes())
                .to_bytes(),
        );
        assert_eq!(verify_telnyx(Some(&sig), Some(&ts), body, &pk, now), Ok(()));
        assert!(matches!(
            verify_telnyx(Some(&sig), Some(&ts), b"{}", &pk, now),
            Err(Refused::Signature(_))
        ));
        let other = b64.encode(
            ed25519_dalek::SigningKey::from_bytes(&[8u8; 32])
                .verifying_key()
                .to_bytes(),
        );
        assert!(matches!(
            verify_telnyx(Some(&sig), Some(&ts), body, &other, now),
            Err(Refused::Signature(_))
        ));
        assert!(matches!(
            verify_telnyx(Some(&sig), Some(&ts), body, &pk, now + MAX_SKEW_MS + 1000),
            Err(Refused::Stale(_))
        ));
    }

    /// Twilio's own documented example (twilio.com/docs/usage/security).
    #[test]
    fn twilio_documented_example() {
        let params: Vec<(String, String)> = [
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+12349013030"),
            ("Digits", "1234"),
            ("From", "+12349013030"),
            ("To", "+18005551212"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        let sig = twilio_signature(url, &params, "12345");
        assert_eq!(sig, "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
        assert_eq!(verify_twilio(Some(&sig), url, &params, "12345"), Ok(()));
        assert!(verify_twilio(Some(&sig), url, &params, "54321").is_err());
    }
}
