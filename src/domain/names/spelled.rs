//! Names spelled out on the phone: letter runs ("S-C-H-R-E-I-B-E-R", "S C H R E I B E R"),
//! spelling words ("S wie Siegfried, C wie Cäsar", "S as in Sierra", "S for sugar",
//! DIN 5009 and NATO/ICAO alphabets, bare runs like "Sierra Mike India Tango Hotel").
//! A spelled run becomes one token, so the cue that introduced it reads a normal name;
//! a run right after a similar spoken word replaces that word (the spelling is right,
//! the transcription of the spoken word may not be).

use super::lexicon::SPELLING_WORDS;
use super::text::{capitalize, Tok};

const LINKS: &[&[&str]] = &[
    &["wie"],
    &["as", "in"],
    &["for"],
    &["like"],
    &["jaise"],
    &["जैसे"],
    &["kmo"],
    &["כמו"],
];

fn spelling_letter(lower: &str) -> Option<&'static str> {
    SPELLING_WORDS
        .iter()
        .find(|(w, _)| *w == lower)
        .map(|(_, l)| *l)
}

/// A token that is one letter (or "Sch", "Ä", "ß" in German spelling).
fn letter_of(t: &Tok) -> Option<String> {
    let n = t.word.chars().count();
    let ok = n == 1 && t.word.chars().all(char::is_alphabetic)
        || matches!(t.lower.as_str(), "sch" | "ch");
    ok.then(|| t.lower.clone())
}

/// "S-C-H-M-I-D-T" as one token.
fn hyphen_run(t: &Tok) -> Option<String> {
    let parts: Vec<&str> = t.word.split(['-', '.']).collect();
    (parts.len() >= 3
        && parts
            .iter()
            .all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphabetic)))
    .then(|| parts.concat().to_lowercase())
}

fn link_len(toks: &[Tok], at: usize) -> Option<usize> {
    LINKS.iter().find_map(|l| {
        (l.len() + at <= toks.len() && l.iter().enumerate().all(|(i, w)| toks[at + i].lower == *w))
            .then_some(l.len())
    })
}

/// One "X wie Word" group at `at`: (letters, tokens used).
fn wie_group(toks: &[Tok], at: usize) -> Option<(String, usize)> {
    let letter = letter_of(toks.get(at)?)?;
    let n = link_len(toks, at + 1)?;
    let word = toks.get(at + 1 + n)?;
    // The explicit letter counts; the word must be a spelling word or start with it.
    let wl = word.lower.as_str();
    let ok = spelling_letter(wl).is_some_and(|l| l == letter)
        || wl.starts_with(letter.as_str())
        || (letter == "ß" && wl == "eszett");
    ok.then(|| (letter, 2 + n))
}

fn umlaut(letters: &str) -> String {
    letters.to_string()
}

/// Collapse spelled runs into single tokens marked `spelled`.
pub(crate) fn collapse_spelling(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(toks.len());
    let mut i = 0;
    while i < toks.len() {
        // 1. "S-C-H-M-I-D-T".
        if let Some(letters) = hyphen_run(&toks[i]) {
            push_spelled(&mut out, &letters, &toks[i..i + 1]);
            i += 1;
            continue;
        }
        // 2. "S wie Siegfried, C wie Cäsar, …" (two or more groups).
        let mut j = i;
        let mut letters = String::new();
        while let Some((l, used)) = wie_group(&toks, j) {
            letters.push_str(&l);
            j += used;
        }
        if j > i && letters.chars().count() >= 2 {
            push_spelled(&mut out, &umlaut(&letters), &toks[i..j]);
            i = j;
            continue;
        }
        // 3. Bare spelling words ("Sierra Mike India …", three or more).
        let mut j = i;
        let mut letters = String::new();
        while let Some(l) = toks.get(j).and_then(|t| spelling_letter(&t.lower)) {
            letters.push_str(l);
            j += 1;
        }
        if j - i >= 3 {
            push_spelled(&mut out, &letters, &toks[i..j]);
            i = j;
            continue;
        }
        // 4. Single letters "S C H R E I B E R" (three or more; "A." initials excluded).
        let mut j = i;
        let mut letters = String::new();
        while let Some(l) = toks
            .get(j)
            .filter(|t| t.word.chars().count() == 1 && t.word.chars().all(char::is_alphabetic))
            .filter(|t| !t.tail.starts_with('.') || j + 1 == toks.len())
        {
            letters.push_str(&l.lower);
            j += 1;
        }
        if j - i >= 3 {
            push_spelled(&mut out, &letters, &toks[i..j]);
            i = j;
            continue;
        }
        out.push(toks[i].clone());
        i += 1;
    }
    out
}

fn push_spelled(out: &mut Vec<Tok>, letters: &str, used: &[Tok]) {
    let word = capitalize(letters);
    let last = used.last().expect("a run uses tokens");
    let raw = used
        .iter()
        .map(|t| t.raw.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let mut t = Tok::new(&raw, &word, &last.tail, false);
    t.sentence_end = last.sentence_end;
    t.punct_after = last.punct_after;
    t.spelled = true;
    // "Maier, M-A-Y-E-R": the spelling replaces the spoken word before it when they are
    // close (the transcript's spelling of a spoken word is a guess).
    if let Some(prev) = out.last() {
        let (a, b) = (
            super::fold::fold_key(&prev.word),
            super::fold::fold_key(&word),
        );
        let cologne = |s: &str| {
            use rphonetic::Encoder;
            rphonetic::Cologne.encode(s)
        };
        let close = a.chars().next() == b.chars().next()
            && (strsim::jaro_winkler(&a, &b) >= 0.75 || cologne(&a) == cologne(&b));
        if close && !prev.spelled && prev.word.chars().next().is_some_and(char::is_uppercase) {
            let prev = out.pop().expect("checked");
            t.raw = format!("{} {}", prev.raw, t.raw);
        }
    }
    out.push(t);
}

#[cfg(test)]
mod tests {
    use super::super::text::tokenize;
    use super::*;

    fn words(s: &str) -> Vec<String> {
        collapse_spelling(tokenize(s))
            .into_iter()
            .map(|t| t.word)
            .collect()
    }

    #[test]
    fn runs_collapse() {
        assert_eq!(
            words("Mein Name ist S-C-H-R-E-I-B-E-R."),
            ["Mein", "Name", "ist", "Schreiber"]
        );
        assert_eq!(words("Maier, M-A-Y-E-R"), ["Mayer"]);
        assert_eq!(
            words("Kowalski, K wie Kaufmann, O wie Otto, W wie Wilhelm, A wie Anton, L wie Ludwig, S wie Samuel, K wie Konrad, I wie Ida"),
            ["Kowalski"]
        );
        assert_eq!(words("it's Smyth, S as in Sierra, M as in Mike, Y as in Yankee, T as in Tango, H as in Hotel"), ["it's", "Smyth"]);
        assert_eq!(words("S M Y T H"), ["Smyth"]);
        assert_eq!(words("Sierra Mike Yankee Tango Hotel"), ["Smyth"]);
        assert_eq!(words("J. R. Ewing"), ["J", "R", "Ewing"]);
    }
}
