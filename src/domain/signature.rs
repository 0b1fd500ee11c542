//! Error signatures: the same failure with different ids, numbers and timestamps folds
//! into one group ("timeout after 30000 ms for call 8812" → "timeout after <n> ms for call <n>").

/// Fold variable parts of an error message so equal failures group together.
pub fn error_signature(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(200));
    for token in
        message.split_inclusive(|c: char| c.is_whitespace() || "=:,;()[]{}\"'/".contains(c))
    {
        let (word, sep) = split_trailing_sep(token);
        out.push_str(&fold_word(word));
        out.push_str(sep);
        if out.len() >= 200 {
            break;
        }
    }
    let mut s: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.len() > 160 {
        let mut cut = 160;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

fn split_trailing_sep(token: &str) -> (&str, &str) {
    match token.char_indices().last() {
        Some((i, c)) if c.is_whitespace() || "=:,;()[]{}\"'/".contains(c) => {
            (&token[..i], &token[i..])
        }
        _ => (token, ""),
    }
}

fn fold_word(word: &str) -> String {
    if word.is_empty() {
        return String::new();
    }
    let digits = word.chars().filter(|c| c.is_ascii_digit()).count();
    let hex = word.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    let letters = word.chars().filter(|c| c.is_alphabetic()).count();
    if hex && word.len() >= 8 && digits > 0 && letters > 0 {
        return "<id>".into(); // uuids, hex job ids, request ids
    }
    if digits > 0 && digits >= letters {
        // numbers, times (12:30:01 splits on ':'), dates (2026-11-23), +4930123456
        return "<n>".into();
    }
    if digits >= 3 && digits * 2 >= word.chars().count() {
        return "<id>".into(); // CA1234567, call_88123, 2026-11-23T01:02:03Z
    }
    word.to_string()
}

#[cfg(test)]
mod tests {
    use super::error_signature as sig;

    #[test]
    fn ids_numbers_and_times_fold() {
        assert_eq!(
            sig("stt timeout after 30000 ms for call 8812"),
            sig("stt timeout after 12000 ms for call 17")
        );
        assert_eq!(
            sig("request 3f2a9c1e-77aa-4b1c-9d7e-0c1d2e3f4a5b failed at 2026-11-23T01:02:03Z"),
            sig("request 0a1b2c3d-0000-4b1c-9d7e-ffffffffffff failed at 2025-01-01T00:00:00Z")
        );
        assert_eq!(
            sig("deepgram 400: Bad Request"),
            "deepgram <n>: Bad Request"
        );
    }

    #[test]
    fn different_errors_stay_apart() {
        assert_ne!(sig("llm output is not JSON"), sig("stt timeout after 3 s"));
    }
}
