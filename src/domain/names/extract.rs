//! Cue phrases: how a caller introduces themselves ("hier ist Frau Schreiber", "mera naam …
//! hai", "קוראים לי …"), read from one utterance's tokens. Spelled-out names
//! ("S-C-H-R-E-I-B-E-R", "S wie Siegfried …", "Sierra Mike …") are collapsed into one
//! word first, so every cue reads them like any other name.

use super::guard::{is_plausible_name_in, NameContext};
use super::lexicon::*;
use super::text::{capitalize, is_cased, is_mark, sentence_text, sentences, Tok};
use serde::{Deserialize, Serialize};

/// How much a cue constrains what follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum CueKind {
    /// Explicitly names ("my name is"): lowercase names from STT are accepted.
    Explicit,
    /// An introduction ("this is", "hier ist"): Latin-script names must be capitalized.
    Intro,
    /// Hindi "main X bol raha hoon": only counts with the verb after the name.
    NeedsVerb,
    /// Hebrew "אני X" ("I am X"): weak, so the name must end the clause.
    Weak,
}

pub(crate) struct Cue {
    pub words: &'static [&'static str],
    pub confidence: f64,
    pub kind: CueKind,
    /// Tokens that may sit between cue and name ("ich bin *der* Peter", "השם שלי *הוא* דוד").
    pub skip: &'static [&'static str],
}

const fn cue(words: &'static [&'static str], confidence: f64, kind: CueKind) -> Cue {
    Cue {
        words,
        confidence,
        kind,
        skip: &[],
    }
}

/// Cues before the name.
pub(crate) const LEAD_CUES: &[Cue] = &[
    cue(&["my", "name", "is"], 0.95, CueKind::Explicit),
    cue(&["my", "name's"], 0.95, CueKind::Explicit),
    cue(&["my", "full", "name", "is"], 0.95, CueKind::Explicit),
    cue(&["mein", "name", "ist"], 0.95, CueKind::Explicit),
    cue(&["mein", "name", "wäre"], 0.9, CueKind::Explicit),
    cue(&["ich", "heiße"], 0.9, CueKind::Explicit),
    cue(&["ich", "heisse"], 0.9, CueKind::Explicit),
    cue(&["mera", "naam"], 0.95, CueKind::Explicit),
    cue(&["mera", "nam"], 0.95, CueKind::Explicit),
    cue(&["mera", "name"], 0.95, CueKind::Explicit),
    cue(&["मेरा", "नाम"], 0.95, CueKind::Explicit),
    cue(&["קוראים", "לי"], 0.95, CueKind::Explicit),
    cue(&["korim", "li"], 0.95, CueKind::Explicit),
    cue(&["שמי"], 0.9, CueKind::Explicit),
    cue(&["shmi"], 0.9, CueKind::Explicit),
    Cue {
        words: &["השם", "שלי"],
        confidence: 0.9,
        kind: CueKind::Explicit,
        skip: &["הוא"],
    },
    Cue {
        words: &["ha", "shem", "sheli"],
        confidence: 0.9,
        kind: CueKind::Explicit,
        skip: &["hu"],
    },
    Cue {
        words: &["hashem", "sheli"],
        confidence: 0.9,
        kind: CueKind::Explicit,
        skip: &["hu"],
    },
    cue(&["hier", "spricht"], 0.9, CueKind::Intro),
    Cue {
        words: &["hier", "ist"],
        confidence: 0.85,
        kind: CueKind::Intro,
        skip: &["der", "die"],
    },
    cue(&["this", "is"], 0.8, CueKind::Intro),
    Cue {
        words: &["ich", "bin"],
        confidence: 0.75,
        kind: CueKind::Intro,
        skip: &["der", "die"],
    },
    cue(&["i", "am"], 0.7, CueKind::Intro),
    cue(&["i'm"], 0.7, CueKind::Intro),
    cue(&["it's"], 0.6, CueKind::Intro),
    cue(&["it", "is"], 0.6, CueKind::Intro),
    cue(&["main"], 0.85, CueKind::NeedsVerb),
    cue(&["mai"], 0.85, CueKind::NeedsVerb),
    cue(&["मैं"], 0.85, CueKind::NeedsVerb),
    cue(&["मै"], 0.85, CueKind::NeedsVerb),
    cue(&["מדבר"], 0.8, CueKind::Intro),
    cue(&["מדברת"], 0.8, CueKind::Intro),
    cue(&["medaber"], 0.8, CueKind::Intro),
    cue(&["medaberet"], 0.8, CueKind::Intro),
    cue(&["אני"], 0.55, CueKind::Weak),
    cue(&["ani"], 0.55, CueKind::Weak),
];

/// Verbs that must follow the name after a Hindi "main" cue.
const HINDI_SPEAK_VERBS: &[&str] = &["bol", "baat", "बोल", "बात"];

/// Cues after the name ("Müller am Apparat", "John speaking", "Rahul bol raha hoon").
/// `true` = romanized/uncased speech where lowercase names are accepted.
const TAIL_CUES: &[(&[&str], f64, bool)] = &[
    (&["am", "apparat"], 0.85, false),
    (&["mein", "name"], 0.85, false),
    (&["ist", "mein", "name"], 0.85, false),
    (&["is", "my", "name"], 0.85, false),
    (&["speaking"], 0.8, false),
    (&["here"], 0.8, false),
    (&["hier"], 0.8, false),
    (&["bol", "raha"], 0.85, true),
    (&["bol", "rahi"], 0.85, true),
    (&["baat", "kar", "raha"], 0.85, true),
    (&["baat", "kar", "rahi"], 0.85, true),
    (&["bol", "rahe"], 0.85, true),
    (&["baat", "kar", "rahe"], 0.85, true),
    (&["बोल", "रहे"], 0.85, true),
    (&["बात", "कर", "रहे"], 0.85, true),
    (&["बोल", "रहा"], 0.85, true),
    (&["बोल", "रही"], 0.85, true),
    (&["बात", "कर", "रहा"], 0.85, true),
    (&["बात", "कर", "रही"], 0.85, true),
    (&["מדבר"], 0.8, true),
    (&["מדברת"], 0.8, true),
    (&["medaber"], 0.8, true),
    (&["medaberet"], 0.8, true),
];

/// A surname alone as the first words of the call (German habit): weak evidence.
pub const SURNAME_ALONE_CONFIDENCE: f64 = 0.5;
const SURNAME_ALONE_WITH_TITLE_CONFIDENCE: f64 = 0.6;
/// A first and last name as the caller's first words ("Ja, Anna Schmidt, ich hätte …").
pub const FULL_NAME_FIRST_CONFIDENCE: f64 = 0.75;
/// A bare name right after the agent asked for it ("Your name?" – "Peter Brandt.").
pub const ANSWER_CONFIDENCE: f64 = 0.8;
/// At most this many name tokens are read after a cue.
const MAX_NAME_TOKENS: usize = 3;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCandidate {
    /// The name without titles, as spoken ("Schreiber", "John Carter", "प्रिया").
    pub name: String,
    /// The cue phrase that matched ("mein name ist", "this is", "surname alone", …).
    pub cue: String,
    /// The caller's sentence it came from.
    pub evidence: String,
    pub confidence: f64,
    /// A title that was stripped (Herr, Frau, Dr., Mr, Smt, ji, …): a gender hint.
    pub title: Option<String>,
    /// The caller spelled (part of) the name out letter by letter.
    #[serde(default)]
    pub spelled: bool,
}

/// Could this token be part of a name? Latin/cased scripts need a capital letter unless
/// `allow_lower` (explicit cues, romanized Hindi); uncased scripts (Devanagari, Hebrew)
/// rely on the stop-word list instead.
pub(crate) fn is_name_token(t: &Tok, allow_lower: bool) -> bool {
    let Some(first) = t.word.chars().next() else {
        return false;
    };
    first.is_alphabetic()
        && t.word
            .chars()
            .all(|c| c.is_alphabetic() || is_mark(c) || c == '-' || c == '\'')
        && !STOP_WORDS.contains(&t.lower.as_str())
        && !FILLER.contains(&t.lower.as_str())
        && (!is_cased(first) || first.is_uppercase() || allow_lower)
}

/// "Wilson's", "James'": a possessive name token.
pub(crate) fn possessive_stem(t: &Tok) -> Option<String> {
    let w = &t.word;
    if let Some(s) = w.strip_suffix("'s").or_else(|| w.strip_suffix("'S")) {
        return Some(s.to_string());
    }
    if t.tail.starts_with('\'') && (w.ends_with('s') || w.ends_with('z') || w.ends_with('x')) {
        return Some(w.to_string());
    }
    None
}

/// A name read from the tokens, with any titles around it.
pub(crate) struct Found {
    pub name: Vec<String>,
    pub titles: Vec<String>,
    /// Index just past the last name token (or honorific).
    pub end: usize,
    /// Index of the first name token.
    pub start: usize,
    /// The last name token was possessive ("Mrs Wilson's …").
    pub possessive: bool,
    pub spelled: bool,
}

pub(crate) fn title_text(t: &Tok) -> String {
    // Keep the abbreviation dot: "Dr." reads better than "Dr" in a hint.
    if matches!(
        t.lower.as_str(),
        "dr" | "prof" | "mr" | "mrs" | "ms" | "smt"
    ) {
        format!("{}.", t.word)
    } else {
        t.word.clone()
    }
}

/// Read titles and up to [`MAX_NAME_TOKENS`] name tokens starting at `k`.
pub(crate) fn read_name_forward(toks: &[Tok], mut k: usize, allow_lower: bool) -> Option<Found> {
    let mut titles = Vec::new();
    while let Some(t) = toks.get(k).filter(|t| is_title(&t.lower)) {
        titles.push(title_text(t));
        k += 1;
        // "Frau, …": a title followed by a pause is not followed by a name ("Dr." is fine).
        if t.punct_after && !t.tail.starts_with('.') {
            return None;
        }
    }
    let start = k;
    let mut name = Vec::new();
    let mut particles = 0;
    let mut possessive = false;
    let mut spelled = false;
    while let Some(t) = toks.get(k) {
        if name.len() - particles == MAX_NAME_TOKENS {
            break;
        }
        if !name.is_empty() {
            if let Some(n) = particle_run(toks, k) {
                name.extend(toks[k..k + n].iter().map(|t| t.word.clone()));
                particles += n;
                k += n;
                continue;
            }
        }
        let honorific = TRAILING_HONORIFICS.contains(&t.lower.as_str());
        if honorific || is_title(&t.lower) || !is_name_token(t, allow_lower) {
            break;
        }
        if let Some(stem) = possessive_stem(t) {
            name.push(stem);
            possessive = true;
            k += 1;
            break;
        }
        // "Sharma-ji": the honorific is glued on.
        let (word, glued) = match t.word.rsplit_once('-') {
            Some((w, h))
                if TRAILING_HONORIFICS.contains(&h.to_lowercase().as_str()) && !w.is_empty() =>
            {
                (w, Some(h))
            }
            _ => (t.word.as_str(), None),
        };
        spelled |= t.spelled;
        name.push(if allow_lower {
            capitalize(word)
        } else {
            word.to_string()
        });
        k += 1;
        if let Some(h) = glued {
            titles.push(h.to_string());
            break;
        }
        if t.punct_after {
            break;
        }
    }
    if name.is_empty() {
        return None;
    }
    // "Sharma ji", "शर्मा जी".
    if let Some(t) = toks
        .get(k)
        .filter(|t| TRAILING_HONORIFICS.contains(&t.lower.as_str()))
    {
        if !toks[k - 1].punct_after && !possessive {
            titles.push(t.word.clone());
            k += 1;
        }
    }
    // Uncased scripts have no capitals to end a name: three tokens only when a Hindi
    // terminator ("है", "bol") confirms where the name ends, else two.
    let uncased = name.iter().all(|w| !w.chars().next().is_some_and(is_cased));
    if uncased
        && name.len() == MAX_NAME_TOKENS
        && !toks.get(k).is_some_and(|t| is_hindi_terminator(&t.lower))
    {
        name.truncate(2);
        k = start + 2;
    }
    Some(Found {
        name,
        titles,
        end: k,
        start,
        possessive,
        spelled,
    })
}

/// Lowercase name particles ("van der Berg", "da Silva", "bin Salman") join a name when a
/// capitalized name word follows them. German "von" is deliberately absent: "Müller von
/// der Firma Schulz" is far more common on the phone than "von Weizsäcker".
#[rustfmt::skip]
const PARTICLES: &[&str] = &[
    "van", "de", "da", "di", "del", "della", "du", "la", "le", "ter", "ten", "bin", "ben", "al",
    "el",
];
/// Particles that may only follow another particle ("van *der*", "de *la*").
const SECOND_PARTICLES: &[&str] = &["der", "den", "de", "la", "le", "del"];

/// How many tokens from `k` form a particle run followed by a capitalized name word.
fn particle_run(toks: &[Tok], k: usize) -> Option<usize> {
    let first = toks.get(k)?;
    if !PARTICLES.contains(&first.word.as_str()) || first.punct_after || toks[k - 1].punct_after {
        return None;
    }
    let mut n = 1;
    while toks
        .get(k + n)
        .is_some_and(|t| SECOND_PARTICLES.contains(&t.word.as_str()) && !t.punct_after)
    {
        n += 1;
    }
    let next = toks.get(k + n)?;
    let capital = next.word.chars().next().is_some_and(char::is_uppercase);
    (capital
        && never_a_name(&next.lower).is_none()
        && !is_title(&next.lower)
        && is_name_token(next, false))
    .then_some(n)
}

fn is_hindi_terminator(lower: &str) -> bool {
    matches!(lower, "hai" | "hoon" | "hun" | "है" | "हूँ" | "हूं") || HINDI_SPEAK_VERBS.contains(&lower)
}

/// Read the name ending just before `cue_at` ("Frau Müller | am Apparat"). The name must
/// start its clause: "der Termin hier" is not "Termin".
pub(crate) fn read_name_backward(toks: &[Tok], cue_at: usize, allow_lower: bool) -> Option<Found> {
    let mut k = cue_at;
    let mut name = Vec::new();
    let mut spelled = false;
    let mut honorific = None;
    // "Verma ji bol raha hoon": the honorific sits between name and cue.
    if k > 1
        && TRAILING_HONORIFICS.contains(&toks[k - 1].lower.as_str())
        && !toks[k - 2].punct_after
    {
        honorific = Some(toks[k - 1].word.clone());
        k -= 1;
    }
    while k > 0 && name.len() < MAX_NAME_TOKENS {
        let t = &toks[k - 1];
        if t.punct_after
            || is_title(&t.lower)
            || !is_name_token(t, allow_lower)
            || PRONOUNS.contains(&t.lower.as_str())
        {
            break;
        }
        if possessive_stem(t).is_some() {
            return None;
        }
        spelled |= t.spelled;
        name.push(if allow_lower {
            capitalize(&t.word)
        } else {
            t.word.clone()
        });
        k -= 1;
    }
    if name.is_empty() {
        return None;
    }
    let start = k;
    let mut titles = Vec::new();
    while k > 0
        && is_title(&toks[k - 1].lower)
        && (!toks[k - 1].punct_after || toks[k - 1].tail.starts_with('.'))
    {
        titles.push(title_text(&toks[k - 1]));
        k -= 1;
    }
    let clause_start = k == 0 || {
        let before = &toks[k - 1];
        before.punct_after
            || FILLER.contains(&before.lower.as_str())
            || GREETING_WORDS.contains(&before.lower.as_str())
            || PRONOUNS.contains(&before.lower.as_str())
    };
    if !clause_start {
        return None;
    }
    name.reverse();
    titles.reverse();
    titles.extend(honorific);
    Some(Found {
        name,
        titles,
        end: cue_at,
        start,
        possessive: false,
        spelled,
    })
}

pub(crate) fn matches_at(toks: &[Tok], at: usize, words: &[&str]) -> bool {
    words.len() <= toks.len().saturating_sub(at)
        && words.iter().enumerate().all(|(i, w)| {
            let t = &toks[at + i];
            // Only the last cue word may carry punctuation ("my name is: …").
            t.lower == *w && (i + 1 == words.len() || !t.punct_after)
        })
}

/// A name the rules read, where it stood, and whether it is someone else's.
pub(crate) struct Read {
    pub candidate: NameCandidate,
    pub span: std::ops::Range<usize>,
    pub possessive: bool,
}

pub(crate) fn make_candidate(
    found: &Found,
    cue: String,
    toks: &[Tok],
    confidence: f64,
) -> NameCandidate {
    NameCandidate {
        name: found.name.join(" "),
        cue,
        evidence: sentence_text(toks, found.start.min(toks.len().saturating_sub(1))),
        confidence,
        title: (!found.titles.is_empty()).then(|| found.titles.join(" ")),
        spelled: found.spelled,
    }
}

/// Names introduced by a cue phrase in one utterance (not yet guarded).
pub(crate) fn cue_candidates(toks: &[Tok]) -> Vec<Read> {
    let mut out = Vec::new();
    for at in 0..toks.len() {
        for c in LEAD_CUES {
            if !matches_at(toks, at, c.words) {
                continue;
            }
            let mut k = at + c.words.len();
            if !toks[k - 1].punct_after {
                while toks
                    .get(k)
                    .is_some_and(|t| c.skip.contains(&t.lower.as_str()) && !t.punct_after)
                {
                    k += 1;
                }
            }
            let allow_lower = matches!(c.kind, CueKind::Explicit | CueKind::NeedsVerb);
            let Some(mut found) = read_name_forward(toks, k, allow_lower) else {
                continue;
            };
            // "my name's Gareth, Gareth Pryce", "mein Name ist Becker, Andreas Becker":
            // the name said again in full right after a pause.
            if found.name.len() == 1 && toks[found.end - 1].punct_after && !found.possessive {
                if let Some(again) = read_name_forward(toks, found.end, allow_lower) {
                    let w = super::fold::fold_key(&found.name[0]);
                    if again.name.len() == 2
                        && again.name.iter().any(|n| super::fold::fold_key(n) == w)
                        && !again.possessive
                    {
                        let titles = std::mem::take(&mut found.titles);
                        found = Found {
                            titles: if again.titles.is_empty() {
                                titles
                            } else {
                                again.titles
                            },
                            ..again
                        };
                    }
                }
            }
            let next = toks.get(found.end);
            let accepted = match c.kind {
                CueKind::Explicit | CueKind::Intro => true,
                CueKind::NeedsVerb => {
                    next.is_some_and(|t| HINDI_SPEAK_VERBS.contains(&t.lower.as_str()))
                }
                CueKind::Weak => {
                    found.name.len() <= 2
                        && !found.possessive
                        && (next.is_none() || toks[found.end - 1].punct_after)
                }
            };
            // Uncased scripts have no capitals to tell a name from a word ("אני בעלת העסק",
            // "מדברת מהמשרד"): after a weak or plain intro cue the first word must be a
            // known first name, or a title must stand before it.
            let uncased = found
                .name
                .first()
                .and_then(|w| w.chars().next())
                .is_some_and(|ch| !is_cased(ch));
            let needs_known = matches!(c.kind, CueKind::Weak)
                || (uncased && matches!(c.kind, CueKind::Intro) && found.titles.is_empty());
            if needs_known && !found.name.first().is_some_and(|w| is_known_first_name(w)) {
                continue;
            }
            if !accepted {
                continue;
            }
            let cand = make_candidate(&found, c.words.join(" "), toks, c.confidence);
            out.push(Read {
                candidate: cand,
                span: found.start..found.end,
                possessive: found.possessive,
            });
        }
        for (words, confidence, allow_lower) in TAIL_CUES {
            if !matches_at(toks, at, words) || at == 0 {
                continue;
            }
            let Some(found) = read_name_backward(toks, at, *allow_lower) else {
                continue;
            };
            let cand = make_candidate(&found, format!("… {}", words.join(" ")), toks, *confidence);
            out.push(Read {
                candidate: cand,
                span: found.start..found.end,
                possessive: false,
            });
        }
    }
    out
}

/// A first name from the gender lexicon, in any script.
pub(crate) fn is_known_first_name(w: &str) -> bool {
    super::first_names::is_known(w)
}

/// Filler, greetings and honorifics around a bare name.
fn is_filler_tok(t: &Tok) -> bool {
    FILLER.contains(&t.lower.as_str())
        || GREETING_WORDS.contains(&t.lower.as_str())
        || t.lower == "ji"
        || (t.lower == "tag" || t.lower == "morgen" || t.lower == "abend")
}

/// A bare name as the first sentence of an utterance that is not pure greeting: the
/// German habit of answering with the surname ("Müller.", "Ja, Frau Müller?", "Müller,
/// guten Tag"), or the answer to "what is your name?" (`answer`: then two or three
/// lowercase words from romanized STT are accepted too).
pub(crate) fn bare_name(toks: &[Tok], answer: bool) -> Option<Read> {
    let mut ranges = Vec::new();
    for range in sentences(toks) {
        let question = toks[range.end - 1].question();
        ranges.push(range.clone());
        let Some(s) = (range.start..range.end).find(|&i| !is_filler_tok(&toks[i])) else {
            continue; // all greeting: the next sentence may hold the name
        };
        // "Ja, Anna Schmidt, ich hätte gern einen Termin.": the first clause after the
        // greeting, when the sentence goes on (never in a question: "Anna Schmidt, bitte?"
        // asks for someone).
        // Not after a pronoun or cue word ("Ani Amir Dahan, …" keeps its weak cue).
        let plain_start = toks[range.start..s]
            .iter()
            .all(|t| !PRONOUNS.contains(&t.lower.as_str()));
        if !question && plain_start {
            if let Some(e) = (s..range.end).find(|&i| toks[i].punct_after) {
                if e + 1 < range.end && e + 1 - s <= 3 {
                    ranges.push(s..e + 1);
                }
            }
        }
        break;
    }
    for range in ranges {
        let words = &toks[range.clone()];
        let Some(core_start) = words.iter().position(|t| !is_filler_tok(t)) else {
            continue; // all greeting: try the next sentence
        };
        let core_end = words
            .iter()
            .rposition(|t| !is_filler_tok(t))
            .map_or(core_start, |i| i + 1);
        let core = &words[core_start..core_end];
        let titles: Vec<String> = core
            .iter()
            .take_while(|t| is_title(&t.lower))
            .map(title_text)
            .collect();
        let mut name_toks = &core[titles.len()..];
        // "Sharma ji."
        if name_toks.len() > 1
            && TRAILING_HONORIFICS.contains(&name_toks[name_toks.len() - 1].lower.as_str())
        {
            name_toks = &name_toks[..name_toks.len() - 1];
        }
        let max = if answer { 3 } else { 2 };
        let capitalized = name_toks.iter().all(|t| {
            is_name_token(t, false)
                && t.word
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_uppercase() || !is_cased(c))
        });
        let lower_ok =
            answer && name_toks.len() >= 2 && name_toks.iter().all(|t| is_name_token(t, true));
        if !(1..=max).contains(&name_toks.len()) || !(capitalized || lower_ok) {
            continue;
        }
        // A possessive is someone else's name.
        if name_toks.iter().any(|t| possessive_stem(t).is_some()) {
            continue;
        }
        // Uncased scripts with no cue at all: only as an answer to a name question.
        let uncased = name_toks
            .iter()
            .all(|t| !t.word.chars().next().is_some_and(is_cased));
        if uncased && !answer {
            continue;
        }
        let name = name_toks
            .iter()
            .map(|t| {
                if lower_ok {
                    capitalize(&t.word)
                } else {
                    t.word.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let full = name_toks.len() == 2 && is_known_first_name(&name_toks[0].word);
        let (cue, confidence) = if answer {
            ("answer to a name question", ANSWER_CONFIDENCE)
        } else if full && titles.is_empty() {
            ("full name said first", FULL_NAME_FIRST_CONFIDENCE)
        } else if titles.is_empty() {
            ("surname alone", SURNAME_ALONE_CONFIDENCE)
        } else {
            ("surname alone", SURNAME_ALONE_WITH_TITLE_CONFIDENCE)
        };
        let start = range.start + core_start + titles.len();
        return Some(Read {
            candidate: NameCandidate {
                name,
                cue: cue.into(),
                evidence: words
                    .iter()
                    .map(|t| t.raw.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                confidence,
                title: (!titles.is_empty()).then(|| titles.join(" ")),
                spelled: name_toks.iter().any(|t| t.spelled),
            },
            span: start..start + name_toks.len(),
            possessive: false,
        });
    }
    None
}

/// Guard a candidate; `Err` says why it is no name.
pub(crate) fn guarded(c: &NameCandidate, ctx: &NameContext) -> Result<(), &'static str> {
    is_plausible_name_in(&c.name, ctx)
}
