//! Call records are untrusted input: every text field is bounded and checked before
//! anything is written, with a per-line error that names the field and the problem and
//! never echoes the raw input (values shown are sanitized and shortened).
//!
//! Refused on both backends alike (Postgres rejects a NUL in TEXT, SQLite stores it; the
//! same record must not be fine on one and a dead job on the other): NUL, other C0/C1
//! controls (tab allowed; newlines only in transcript text), escape sequences (ESC, CSI),
//! bidi overrides, and the Unicode noncharacters.

use super::CallRecord;

/// Bounds from config `[ingest]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    pub max_transcript_chars: usize,
    pub max_segments: usize,
    pub max_field_chars: usize,
    pub max_url_chars: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_transcript_chars: 200_000,
            max_segments: 5_000,
            max_field_chars: 512,
            max_url_chars: 4_096,
        }
    }
}

impl Limits {
    pub fn from_config(c: &crate::config::IngestConfig) -> Limits {
        let n = |v: u64| usize::try_from(v).unwrap_or(usize::MAX).max(1);
        Limits {
            max_transcript_chars: n(c.max_transcript_chars),
            max_segments: n(c.max_segments),
            max_field_chars: n(c.max_field_chars),
            max_url_chars: n(c.max_url_chars),
        }
    }
}

/// Input text fit for an error message: escape sequences and controls stripped, at most
/// 60 characters.
pub fn shown(s: &str) -> String {
    let clean = crate::domain::text::sanitize(s);
    match clean.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

/// An error message built by a parser that may quote the input (serde_json does):
/// sanitized and shortened.
pub fn sanitize_message(s: &str) -> String {
    let clean = crate::domain::text::sanitize(s);
    match clean.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &clean[..i]),
        None => clean,
    }
}

/// What is wrong with one character, if anything.
fn bad_char(c: char, newlines: bool) -> Option<&'static str> {
    match c {
        '\0' => Some("a NUL byte (\\0)"),
        '\t' => None,
        '\n' | '\r' if newlines => None,
        '\u{1b}' => Some("an escape sequence (ESC)"),
        '\u{9b}' => Some("an escape sequence (CSI)"),
        c if c.is_control() => Some("a control character"),
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => Some("a bidi override"),
        '\u{fdd0}'..='\u{fdef}' | '\u{fffe}' | '\u{ffff}' => Some("a Unicode noncharacter"),
        _ => None,
    }
}

/// One text field: at most `max` characters, no invalid characters.
pub fn check_text(field: &str, value: &str, max: usize, newlines: bool) -> Result<(), String> {
    let mut n = 0usize;
    for (i, c) in value.chars().enumerate() {
        if let Some(what) = bad_char(c, newlines) {
            return Err(format!(
                "{field} contains {what} (U+{:04X}) at character {}: not accepted in call records",
                c as u32,
                i + 1
            ));
        }
        n += 1;
    }
    if n > max {
        return Err(format!(
            "{field} is {n} characters, over the limit of {max} (config ingest.max_{}_chars)",
            if field.starts_with("transcript") {
                "transcript"
            } else if field == "audio_url" {
                "url"
            } else {
                "field"
            }
        ));
    }
    Ok(())
}

/// Ids are matched, shown and sent to CRMs: letters, digits and a few separators only.
fn check_id(field: &str, value: &str, max: usize) -> Result<(), String> {
    check_text(field, value, max, false)?;
    if let Some((i, c)) = value.chars().enumerate().find(|(_, c)| {
        !(c.is_alphanumeric()
            || matches!(c, '.' | '_' | ':' | '-' | '/' | '@' | '#' | '+' | '=' | '~'))
    }) {
        return Err(format!(
            "{field} {:?} may contain only letters, digits and . _ : - / @ # + = ~ (found {:?} at character {})",
            shown(value),
            shown(&c.to_string()),
            i + 1
        ));
    }
    Ok(())
}

/// Every bound and character rule, after the record parsed.
pub fn check_record(r: &CallRecord, l: &Limits) -> Result<(), String> {
    let f = l.max_field_chars;
    check_text("business", &r.business, f, false)?;
    check_id("external_id", r.external_id.trim(), f)?;
    if let Some(v) = &r.lead_id {
        check_id("lead_id", v.trim(), f)?;
    }
    for (field, v) in [
        ("direction", &r.direction),
        ("from", &r.from),
        ("to", &r.to),
        ("language", &r.language),
        ("agent", &r.agent),
        ("campaign", &r.campaign),
        ("source", &r.source),
    ] {
        if let Some(v) = v {
            check_text(field, v, f, false)?;
        }
    }
    if let Some(serde_json::Value::String(s)) = &r.started_at {
        check_text("started_at", s, f, false)?;
    }
    if let Some(u) = &r.audio_url {
        check_text("audio_url", u, l.max_url_chars, false)?;
    }
    if let Some(t) = &r.transcript {
        if t.segments.len() > l.max_segments {
            return Err(format!(
                "transcript has {} segments, over the limit of {} (config ingest.max_segments)",
                t.segments.len(),
                l.max_segments
            ));
        }
        let mut total = 0usize;
        for (i, s) in t.segments.iter().enumerate() {
            check_text(
                &format!("transcript segment {i} speaker"),
                &s.speaker,
                f,
                false,
            )?;
            check_text(
                &format!("transcript segment {i} text"),
                &s.text,
                l.max_transcript_chars,
                true,
            )?;
            total += s.text.chars().count();
            if total > l.max_transcript_chars {
                return Err(format!(
                    "transcript is over {} characters (config ingest.max_transcript_chars); segment {i} passes the limit",
                    l.max_transcript_chars
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_characters_are_named_without_echoing_them() {
        let e = check_text("agent", "Bob\u{1b}]0;pwned\u{7}", 100, false).unwrap_err();
        assert!(e.contains("agent contains an escape sequence (ESC)"), "{e}");
        assert!(!e.contains('\u{1b}') && !e.contains("pwned"), "{e}");
        let e = check_text("transcript segment 0 text", "a\0b", 100, true).unwrap_err();
        assert!(e.contains("NUL") && e.contains("character 2"), "{e}");
        assert!(check_text("t", "line\nline\ttab", 100, true).is_ok());
        assert!(check_text("from", "a\nb", 100, false).is_err());
        let e = check_text("agent", &"x".repeat(101), 100, false).unwrap_err();
        assert!(
            e.contains("101 characters") && e.contains("max_field_chars"),
            "{e}"
        );
    }

    #[test]
    fn sql_looking_ids_are_refused() {
        let e = check_id("external_id", "1'; DROP TABLE calls;--", 100).unwrap_err();
        assert!(e.contains("may contain only"), "{e}");
        assert!(check_id("external_id", "call-2024/07#1", 100).is_ok());
    }
}
