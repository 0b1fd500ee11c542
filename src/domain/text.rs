//! Untrusted text (transcripts, names, payloads, provider errors) made safe for a
//! terminal: escape sequences (CSI, OSC incl. OSC 52 clipboard writes and OSC 8 links,
//! DCS/SOS/PM/APC strings, `ESC[6n` queries), C0/C1 controls and bidi overrides removed.
//! Newlines survive only where the caller allows them.

/// Strip everything a terminal would interpret. `keep_newlines`: keep `\n` (transcripts
/// shown over several lines); tabs become spaces either way.
pub fn sanitize_with(s: &str, keep_newlines: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars().peekable();
    while let Some(c) = it.next() {
        match c {
            '\u{1b}' => skip_escape(&mut it),
            // C1 introducers that start strings or sequences on 8-bit terminals.
            '\u{9b}' => skip_csi(&mut it),
            '\u{90}' | '\u{9d}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut it),
            '\n' if keep_newlines => out.push('\n'),
            '\t' => out.push(' '),
            '\r' | '\n' => out.push(' '),
            c if c.is_control() => {}
            // Bidi embeddings/overrides/isolates can reorder what the reader sees.
            '\u{202a}'..='\u{202e}'
            | '\u{2066}'..='\u{2069}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{061c}' => {}
            c => out.push(c),
        }
    }
    out
}

/// One line of safe text.
pub fn sanitize(s: &str) -> String {
    sanitize_with(s, false)
}

fn skip_escape(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    match it.next() {
        Some('[') => skip_csi(it),
        Some(']') | Some('P') | Some('X') | Some('^') | Some('_') => skip_string(it),
        // Two-character sequences (ESC 7, ESC c, ESC ( B …): drop the intermediates too.
        Some(c) if ('\u{20}'..='\u{2f}').contains(&c) => {
            it.next();
        }
        _ => {}
    }
}

/// CSI: parameters and intermediates until a final byte 0x40..=0x7e.
fn skip_csi(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    for c in it.by_ref() {
        if ('\u{40}'..='\u{7e}').contains(&c) {
            break;
        }
    }
}

/// OSC/DCS/SOS/PM/APC: until BEL or ST (ESC \ or 0x9c).
fn skip_string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = it.next() {
        match c {
            '\u{7}' | '\u{9c}' => break,
            '\u{1b}' => {
                if it.peek() == Some(&'\\') {
                    it.next();
                }
                break;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_removed() {
        let evil = "hi \x1b[31mred\x1b[0m \x1b]52;c;ZXZpbA==\x07clip \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \x1bP1$r\x1b\\dcs \x1b[6n? \u{202e}txt\u{202c} \u{9b}2Jbell\r\n";
        let s = sanitize(evil);
        assert_eq!(s, "hi red clip link dcs ? txt bell  ");
        assert!(!s.chars().any(|c| c.is_control()));
    }

    #[test]
    fn newlines_kept_when_asked_and_text_untouched() {
        assert_eq!(sanitize_with("a\nb\tc", true), "a\nb c");
        assert_eq!(
            sanitize("Grüß Gott, मेरा नाम प्रिया, שלום"),
            "Grüß Gott, मेरा नाम प्रिया, שלום"
        );
    }
}
