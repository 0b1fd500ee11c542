//! The one redactor: what `callops config` prints, what the store and the provider
//! clients put in errors, and what the log files contain go through these functions, so
//! a password or key cannot leak through one path that another path masks.
//!
//! URLs are taken apart with the `url` crate (not string splitting): the password of the
//! user info and the values of query parameters that carry credentials (`?password=`,
//! `?sslpassword=`, presigned `X-Amz-Signature`, Azure `sig`, `token`, `key`, …) are
//! replaced; the rest of the URL is kept byte for byte so it stays recognisable.
//! Pure: imports nothing else of the crate (config and store both use it).

/// What a masked value is replaced with.
pub const MASK: &str = "REDACTED";

/// Query parameter or config key names that hold credentials.
pub fn is_secret_name(name: &str) -> bool {
    let k = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "sig",
        "credential",
        "auth",
        "cookie",
        "session",
    ]
    .iter()
    .any(|s| k.contains(s))
}

/// A URL fit for an error message or a log: the user info's password and the values of
/// credential-like query parameters replaced by `REDACTED`. Text that is not a URL with an
/// authority or a query is returned unchanged.
pub fn redact_url(s: &str) -> String {
    let Ok(u) = url::Url::parse(s) else {
        return redact_unparsed(s);
    };
    let mut out = s.to_string();
    if u.password().is_some() {
        out = mask_password(&out);
    }
    if u.query().is_some() {
        out = redact_query(&out);
    }
    out
}

/// Where the user info of `scheme://user:pass@host/…` ends (the index of `@`).
fn userinfo_end(s: &str) -> Option<usize> {
    let start = s.find("://")? + 3;
    let rest = &s[start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest[..authority_len].rfind('@').map(|i| start + i)
}

/// `scheme://user:pass@host` → `scheme://user:REDACTED@host` (the first `:` of the user info
/// separates the user from the password).
fn mask_password(s: &str) -> String {
    let Some(at) = userinfo_end(s) else {
        return s.to_string();
    };
    let start = s.find("://").map_or(0, |i| i + 3);
    match s[start..at].find(':') {
        Some(colon) => format!("{}:{MASK}{}", &s[..start + colon], &s[at..]),
        None => s.to_string(),
    }
}

/// Mask the values of credential-like query parameters, keeping every other byte.
fn redact_query(s: &str) -> String {
    let Some((base, rest)) = s.split_once('?') else {
        return s.to_string();
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let query = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) if !v.is_empty() && is_secret_name(&decode(k)) => format!("{k}={MASK}"),
            _ => kv.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&");
    match fragment {
        Some(f) => format!("{base}?{query}#{f}"),
        None => format!("{base}?{query}"),
    }
}

fn decode(k: &str) -> String {
    url::form_urlencoded::parse(k.as_bytes())
        .next()
        .map(|(k, _)| k.into_owned())
        .unwrap_or_else(|| k.to_string())
}

/// Text the URL parser refused (a libpq key/value string, a URL with a bad port): mask
/// `user:pass@` and `password=…` the same way.
fn redact_unparsed(s: &str) -> String {
    let mut out = mask_password(s);
    if out.contains('?') {
        out = redact_query(&out);
    }
    // libpq style: "host=h user=u password=secret"
    out.split(' ')
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !v.is_empty() && is_secret_name(k) && !k.contains('/') => {
                format!("{k}={MASK}")
            }
            _ => w.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Free text (an error message, a log line) with every URL in it redacted.
pub fn redact_text(s: &str) -> String {
    if !s.contains("://") && !s.contains("password=") {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("://") {
        // The URL starts at the scheme: letters, digits, + - . right before "://".
        let scheme_start = rest[..i]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |j| j + 1);
        let end = rest[i..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`' | ')'))
            .map_or(rest.len(), |j| i + j);
        out.push_str(&rest[..scheme_start]);
        out.push_str(&redact_url(&rest[scheme_start..end]));
        rest = &rest[end..];
    }
    out.push_str(rest);
    if out.contains("password=") {
        out = redact_unparsed(&out);
    }
    out
}

/// A config value under a key: references (`env:NAME`, `file:PATH`) and empty values are
/// shown (they are not secrets), other values of credential keys are masked, and URLs lose
/// their passwords and credential parameters.
pub fn redact_value(key: &str, value: &str) -> String {
    let v = value.trim();
    if v.is_empty() || is_reference(v) {
        return value.to_string();
    }
    if is_secret_name(key) && !key.ends_with("_ref") {
        return MASK.to_string();
    }
    redact_text(value)
}

/// `env:NAME` or `file:/path`: where a secret is, not the secret.
pub fn is_reference(v: &str) -> bool {
    v.starts_with("env:") || v.starts_with("file:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_in_user_info_and_query_are_masked() {
        assert_eq!(
            redact_url("postgres://u:secret@h/db"),
            "postgres://u:REDACTED@h/db"
        );
        assert_eq!(
            redact_url("postgres://u@h/db?password=secret&sslmode=require"),
            "postgres://u@h/db?password=REDACTED&sslmode=require"
        );
        assert_eq!(
            redact_url("postgresql://h/db?user=u&PassWord=x"),
            "postgresql://h/db?user=u&PassWord=REDACTED"
        );
        assert_eq!(
            redact_url("amqp://guest:g%40st@mq:5672/%2f"),
            "amqp://guest:REDACTED@mq:5672/%2f"
        );
        assert_eq!(
            redact_url("https://acct.blob.core.windows.net/c/call.mp3?sv=2023&sig=abc%2F&se=2025"),
            "https://acct.blob.core.windows.net/c/call.mp3?sv=2023&sig=REDACTED&se=2025"
        );
        assert_eq!(
            redact_url("https://u:p@host/a.wav?X-Amz-Signature=1&X-Amz-Credential=2&x=3"),
            "https://u:REDACTED@host/a.wav?X-Amz-Signature=REDACTED&X-Amz-Credential=REDACTED&x=3"
        );
        assert_eq!(redact_url("sqlite:data/x.db"), "sqlite:data/x.db");
        assert_eq!(redact_url("sim://audio/1?lang=de"), "sim://audio/1?lang=de");
        assert_eq!(
            redact_url("postgres://u:pw@h:notaport/db"),
            "postgres://u:REDACTED@h:notaport/db"
        );
        assert_eq!(
            redact_url("host=h user=u password=pw"),
            "host=h user=u password=REDACTED"
        );
    }

    #[test]
    fn urls_inside_text_are_masked() {
        assert_eq!(
            redact_text("connecting to postgres://a:b@h/db failed: (x); see amqp://g:p@m/%2f."),
            "connecting to postgres://a:REDACTED@h/db failed: (x); see amqp://g:REDACTED@m/%2f."
        );
        assert_eq!(redact_text("no urls here"), "no urls here");
    }

    #[test]
    fn config_values_by_key() {
        assert_eq!(redact_value("crm_api_key", "abc"), MASK);
        assert_eq!(redact_value("crm_api_key", ""), "");
        assert_eq!(redact_value("crm_api_key", "env:LSQ_KEY"), "env:LSQ_KEY");
        assert_eq!(
            redact_value("url", "postgres://u:p@h/db"),
            "postgres://u:REDACTED@h/db"
        );
        assert_eq!(redact_value("level", "info"), "info");
    }
}
