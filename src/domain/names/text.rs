//! Tokens, sentences and the canonical text form every comparison starts from.

use unicode_normalization::UnicodeNormalization;

pub(crate) fn is_mark(c: char) -> bool {
    // Combining marks: Rust's std has no general-category test, so the ranges that occur
    // in our languages (Latin diacritics, Hebrew points, Indic vowel signs, ZWJ/ZWNJ).
    matches!(c as u32,
        0x0300..=0x036F | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7
        | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x0900..=0x0903 | 0x093A..=0x094F
        | 0x0951..=0x0957 | 0x0962..=0x0963 | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0A01..=0x0A03
        | 0x0A3C..=0x0A51 | 0x0A81..=0x0A83 | 0x0ABC..=0x0ACD | 0x200C..=0x200D)
}

pub(crate) fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// NFKC, typographic apostrophes made plain: the form every comparison starts from.
pub(crate) fn canonical(s: &str) -> String {
    s.nfkc()
        .map(|c| {
            if matches!(
                c,
                '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '´' | '\u{05F3}'
            ) {
                '\''
            } else {
                c
            }
        })
        .collect()
}

/// One word of an utterance.
#[derive(Debug, Clone)]
pub(crate) struct Tok {
    /// The whitespace-separated piece as written, punctuation included (for evidence).
    pub raw: String,
    /// The word without surrounding punctuation, original case.
    pub word: String,
    pub lower: String,
    /// Punctuation right after the word ("," "." "?"), empty if none.
    pub tail: String,
    /// Punctuation followed the word: a clause boundary.
    pub punct_after: bool,
    /// The punctuation ends a sentence ('.', '!', '?', '।'), unless the word is a title
    /// abbreviation or an initial ("Dr.", "J.").
    pub sentence_end: bool,
    /// The word was spelled out letter by letter in the call ("S-C-H-M-I-D-T").
    pub spelled: bool,
}

impl Tok {
    pub(crate) fn new(raw: &str, word: &str, tail: &str, abbreviation: bool) -> Tok {
        Tok {
            raw: raw.to_string(),
            word: word.to_string(),
            lower: word.to_lowercase(),
            tail: tail.to_string(),
            punct_after: !tail.is_empty(),
            sentence_end: tail.contains(['.', '!', '?', '।', '…']) && !abbreviation,
            spelled: false,
        }
    }
    pub(crate) fn question(&self) -> bool {
        self.tail.contains('?')
    }
}

pub(crate) fn tokenize(text: &str) -> Vec<Tok> {
    let text = canonical(text);
    let mut out: Vec<Tok> = Vec::new();
    for raw in text.split_whitespace() {
        let start = raw.len() - raw.trim_start_matches(|c: char| !is_word_char(c)).len();
        let end = raw.trim_end_matches(|c: char| !is_word_char(c)).len();
        // Punctuation before a word ("„Müller", "(Peter") or standing alone ("—", "...")
        // ends the previous clause.
        if start > 0 || start >= end {
            if let Some(prev) = out.last_mut() {
                prev.punct_after = true;
                prev.sentence_end |=
                    raw[..start.min(raw.len())].contains(['.', '!', '?', '।', '…']);
                if raw[..start.min(raw.len())].contains('?') {
                    prev.tail.push('?');
                }
            }
        }
        if start >= end {
            continue;
        }
        let (word, tail) = (&raw[start..end], &raw[end..]);
        let lower = word.to_lowercase();
        let abbreviation =
            super::lexicon::TITLES.contains(&lower.as_str()) || word.chars().count() == 1;
        out.push(Tok::new(raw, word, tail, abbreviation));
    }
    out
}

/// Sentences as token ranges.
pub(crate) fn sentences(toks: &[Tok]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        if t.sentence_end {
            out.push(start..i + 1);
            start = i + 1;
        }
    }
    if start < toks.len() {
        out.push(start..toks.len());
    }
    out
}

pub(crate) fn sentence_text(toks: &[Tok], at: usize) -> String {
    let range = sentences(toks)
        .into_iter()
        .find(|r| r.contains(&at))
        .unwrap_or(0..toks.len());
    toks[range]
        .iter()
        .map(|t| t.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

pub(crate) fn is_cased(c: char) -> bool {
    c.is_uppercase() || c.is_lowercase()
}

/// "rahul" → "Rahul": names read from lowercase STT output are stored capitalized.
pub(crate) fn capitalize(w: &str) -> String {
    let mut cs = w.chars();
    match cs.next() {
        Some(f) if f.is_lowercase() => f.to_uppercase().chain(cs).collect(),
        _ => w.to_string(),
    }
}

/// Lowercase words separated by single spaces, punctuation gone: for phrase matching.
pub(crate) fn flatten(s: &str) -> String {
    canonical(s)
        .to_lowercase()
        .chars()
        .map(|c| if is_word_char(c) || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Does `flat` (from [`flatten`]) contain `phrase` as whole words? The definition
/// [`PhraseSet`] is checked against.
#[cfg(test)]
pub(crate) fn has_phrase(flat: &str, phrase: &str) -> bool {
    if phrase.is_empty() {
        return flat.is_empty() || flat.contains("  ");
    }
    // `" {flat} "` contains `" {phrase} "`, without copying the utterance per phrase (callers
    // ask a hundred phrases of every utterance).
    let bytes = flat.as_bytes();
    let mut from = 0;
    while let Some(i) = flat[from..].find(phrase) {
        let at = from + i;
        let end = at + phrase.len();
        if (at == 0 || bytes[at - 1] == b' ') && (end == flat.len() || bytes[end] == b' ') {
            return true;
        }
        from = at + flat[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// A list of phrases asked of many utterances: does an utterance contain any of them as
/// whole words ([`has_phrase`] for each, in one pass over the utterance instead of a
/// substring search per phrase).
pub(crate) struct PhraseSet {
    any: aho_corasick::AhoCorasick,
}

impl PhraseSet {
    /// `phrases` flattened already (lowercase words, single spaces), none empty.
    pub(crate) fn new(phrases: &[&str]) -> PhraseSet {
        debug_assert!(phrases.iter().all(|p| !p.is_empty()));
        PhraseSet {
            any: aho_corasick::AhoCorasick::new(phrases).expect("phrase lists are small"),
        }
    }

    /// Does `flat` (from [`flatten`]) contain one of the phrases as whole words?
    pub(crate) fn any_in(&self, flat: &str) -> bool {
        let bytes = flat.as_bytes();
        // Overlapping: a match inside a word must not hide one on word boundaries.
        self.any.find_overlapping_iter(flat).any(|m| {
            (m.start() == 0 || bytes[m.start() - 1] == b' ')
                && (m.end() == flat.len() || bytes[m.end()] == b' ')
        })
    }
}

/// The script of a word, for "does this look like a name in its script".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    Latin,
    Devanagari,
    Hebrew,
    Other,
}

pub fn script_of_char(c: char) -> Option<Script> {
    match c as u32 {
        0x0900..=0x097F | 0xA8E0..=0xA8FF => Some(Script::Devanagari),
        0x0590..=0x05FF | 0xFB1D..=0xFB4F => Some(Script::Hebrew),
        _ if c.is_ascii_alphabetic() => Some(Script::Latin),
        0x00C0..=0x024F | 0x1E00..=0x1EFF => Some(Script::Latin),
        _ if c.is_alphabetic() => Some(Script::Other),
        _ => None,
    }
}

/// The script of a word: the first letter's script (None when it has no letters).
pub fn script_of(word: &str) -> Option<Script> {
    word.chars().find_map(script_of_char)
}

#[cfg(test)]
mod tests {
    use super::{has_phrase, PhraseSet};

    /// The definition: the phrase as whole words of the utterance.
    fn reference(flat: &str, phrase: &str) -> bool {
        format!(" {flat} ").contains(&format!(" {phrase} "))
    }

    #[test]
    fn has_phrase_finds_whole_words_only() {
        let flats = [
            "",
            "wie ist ihr name",
            "name",
            "ihr namen bitte ihr name",
            "mera naam rahul hai",
            "मेरा नाम राहुल है",
            "שמי דוד כהן",
            "ein  doppelter abstand",
            "xname name",
            "names",
        ];
        let phrases = [
            "",
            "name",
            "ihr name",
            "naam",
            "नाम",
            "राहुल है",
            "דוד",
            "am",
            "ame",
            "xname",
            "names",
            "ihr",
            "bitte ihr",
            "doppelter",
            " ",
        ];
        for f in flats {
            for p in phrases {
                assert_eq!(has_phrase(f, p), reference(f, p), "{f:?} / {p:?}");
            }
        }
    }

    /// A phrase set answers what asking each phrase would, on the real phrase lists and on
    /// phrases that overlap inside words.
    #[test]
    fn a_phrase_set_answers_as_each_phrase_would() {
        use crate::domain::names::lexicon::{AGENT_SERVICE_PHRASES, NAME_QUESTIONS};
        let mut flats: Vec<String> = [
            "",
            "wie ist ihr name",
            "xname name",
            "names",
            "mera naam rahul hai",
            "मेरा नाम राहुल है",
            "שמי דוד כהן",
            "ein  doppelter abstand",
            "how can i help you today",
            "thank you for calling",
            "may i have your name please",
            "yourname isnt it",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every listed phrase inside, at the edges of, and glued to other words.
        for p in AGENT_SERVICE_PHRASES.iter().chain(NAME_QUESTIONS) {
            flats.push(p.to_string());
            flats.push(format!("ja {p} bitte"));
            flats.push(format!("x{p}"));
            flats.push(format!("{p}x ok"));
        }
        let sets: [&[&str]; 3] = [
            AGENT_SERVICE_PHRASES,
            NAME_QUESTIONS,
            &["name", "ame", "xname", "ihr name", "names"],
        ];
        for list in sets {
            let set = PhraseSet::new(list);
            for f in &flats {
                let want = list.iter().any(|p| has_phrase(f, p));
                assert_eq!(set.any_in(f), want, "{f:?}");
            }
        }
    }
}
