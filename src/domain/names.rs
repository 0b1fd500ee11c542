//! The caller's name: extraction from the caller's own speech by cue phrases (German,
//! English, Hindi, Hebrew), a guard that greetings and filler never pass, and matching
//! against customers (Jaro-Winkler on plain and umlaut-folded forms, Cologne phonetics,
//! rare surnames weighing more than common ones).

use rphonetic::{Cologne, Encoder};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameCandidate {
    pub name: String,
    /// The cue phrase that matched ("mein Name ist", "this is", …).
    pub cue: String,
    /// The caller's sentence it came from.
    pub evidence: String,
    pub confidence: f64,
    /// A title that was stripped (Herr, Frau, Dr., Mr, Smt, …): a gender hint.
    pub title: Option<String>,
}

const TITLES: &[&str] = &[
    "herr",
    "frau",
    "dr",
    "dr.",
    "prof",
    "prof.",
    "mr",
    "mr.",
    "mrs",
    "mrs.",
    "ms",
    "ms.",
    "miss",
    "shri",
    "smt",
    "smt.",
    "श्री",
    "श्रीमती",
    "der",
    "die",
];

/// Greetings and filler: never a name.
const NOT_NAMES: &[&str] = &[
    "guten tag",
    "guten morgen",
    "guten abend",
    "hallo",
    "hallo ja",
    "grüß gott",
    "gruess gott",
    "servus",
    "moin",
    "moin moin",
    "hello",
    "hi",
    "hey",
    "yes",
    "yes speaking",
    "speaking",
    "yeah",
    "ja",
    "nein",
    "no",
    "okay",
    "ok",
    "namaste",
    "namaskar",
    "haan",
    "haan ji",
    "ji",
    "shalom",
    "שלום",
    "नमस्ते",
    "thank you",
    "thanks",
    "danke",
    "bitte",
    "sorry",
    "good morning",
    "good afternoon",
    "good evening",
    "calling",
    "here",
    "hier",
    "am apparat",
    "dran",
    "sure",
    "right",
    "fine",
    "gut",
    "alles gut",
    "ich",
    "me",
    "i",
    "you",
    "sie",
    "du",
    "wir",
    "we",
    "they",
    "customer",
    "kunde",
    "the customer",
    "unknown",
    "anonymous",
];

/// Words that end a name when they follow it ("this is John calling about…").
const STOP_WORDS: &[&str] = &[
    "calling",
    "and",
    "from",
    "about",
    "here",
    "speaking",
    "ich",
    "und",
    "von",
    "aus",
    "wegen",
    "bei",
    "am",
    "hier",
    "i",
    "i'm",
    "hai",
    "hoon",
    "hun",
    "bol",
    "baat",
    "se",
    "ko",
    "the",
    "my",
    "please",
    "bitte",
    "ja",
    "yes",
    "wanted",
    "would",
    "möchte",
    "wollte",
    "want",
    "need",
    "have",
    "habe",
    "with",
    "mit",
    "for",
    "für",
    "regarding",
    "speaking.",
    "का",
    "की",
    "है",
    "हूँ",
    "हूं",
    "बोल",
    "से",
];

/// Cue phrases (lowercase) and the confidence a name after them earns.
const CUES: &[(&str, f64)] = &[
    ("mein name ist", 0.95),
    ("my name is", 0.95),
    ("mera naam", 0.95),
    ("मेरा नाम", 0.95),
    ("קוראים לי", 0.95),
    ("שמי", 0.9),
    ("hier spricht", 0.9),
    ("hier ist", 0.85),
    ("this is", 0.8),
    ("ich bin", 0.75),
    ("i am", 0.7),
    ("i'm", 0.7),
    ("it's", 0.6),
    ("main", 0.6),
    ("मैं", 0.6),
    ("מדבר", 0.8),
    ("מדברת", 0.8),
    ("אני", 0.6),
];

/// Phrases that mark the agent's own greeting ("this is Sarah from ACME, how can I help?").
const AGENT_MARKERS: &[&str] = &[
    "how can i help",
    "how may i help",
    "what can i do for you",
    "was kann ich für sie tun",
    "wie kann ich ihnen helfen",
    "thanks for calling",
    "thank you for calling",
    "vielen dank für ihren anruf",
    "firma",
    "from ",
    " von ",
    " bei ",
];

pub fn fold_umlauts(s: &str) -> String {
    s.replace('ä', "ae")
        .replace('ö', "oe")
        .replace('ü', "ue")
        .replace('Ä', "Ae")
        .replace('Ö', "Oe")
        .replace('Ü', "Ue")
        .replace('ß', "ss")
}

fn strip_punct(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c.is_whitespace() || c == '-' || c == '\'' || is_combining(c)
            {
                c
            } else {
                ' '
            }
        })
        .collect()
}

/// Devanagari and Hebrew vowel signs are marks, not letters, but belong to the word.
fn is_combining(c: char) -> bool {
    matches!(c as u32, 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x0962..=0x0963 | 0x0591..=0x05C7)
}

/// NFKC, lowercase, titles and punctuation removed, whitespace collapsed.
pub fn normalize_name(s: &str) -> String {
    let s: String = s.nfkc().collect::<String>().to_lowercase();
    strip_punct(&s)
        .split_whitespace()
        .filter(|t| !TITLES.contains(t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The guard every name passes, from rules or from a model. Err says why not.
pub fn is_plausible_name(s: &str) -> Result<(), &'static str> {
    let n = normalize_name(s);
    if n.is_empty() {
        return Err("empty");
    }
    if NOT_NAMES.contains(&n.as_str()) || n.split_whitespace().all(|t| NOT_NAMES.contains(&t)) {
        return Err("a greeting or filler word, not a name");
    }
    if n.chars().any(|c| c.is_ascii_digit()) {
        return Err("contains digits");
    }
    if n.split_whitespace().count() > 4 || n.chars().count() > 60 {
        return Err("too long for a name");
    }
    if n.chars().count() < 2 {
        return Err("too short for a name");
    }
    let company = [
        "gmbh", "ltd", "inc", "firma", "company", "support", "service", "team", "hotline",
    ];
    if n.split_whitespace().any(|t| company.contains(&t)) {
        return Err("looks like a company, not a person");
    }
    Ok(())
}

fn looks_like_agent(text: &str) -> bool {
    let l = text.to_lowercase();
    AGENT_MARKERS.iter().any(|m| l.contains(m))
}

/// Take up to three name tokens after a cue, stopping at stop words and punctuation.
fn name_after(rest: &str) -> (Option<String>, Option<String>) {
    let mut title = None;
    let mut tokens = Vec::new();
    for raw in rest.split_whitespace() {
        let ends = raw.ends_with(['.', ',', '!', '?', ';', ':', '।']);
        let t: String = raw
            .chars()
            .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '\'' || is_combining(*c))
            .collect();
        let lower = t.to_lowercase();
        if t.is_empty() {
            break;
        }
        if tokens.is_empty() && TITLES.contains(&lower.as_str()) {
            title = Some(t.clone());
            if ends {
                break;
            }
            continue;
        }
        if STOP_WORDS.contains(&lower.as_str()) {
            break;
        }
        // Latin-script names are capitalized in transcripts; lowercase words are not names.
        let first = t.chars().next().unwrap();
        if first.is_ascii_alphabetic() && first.is_lowercase() {
            break;
        }
        tokens.push(t);
        if ends || tokens.len() == 3 {
            break;
        }
    }
    ((!tokens.is_empty()).then(|| tokens.join(" ")), title)
}

/// Find the caller's self-introduction. With `caller_speaker`, only that speaker's segments
/// count; without, segments that look like the agent's greeting are skipped.
pub fn extract_caller_name(
    segments: &[(String, String)],
    caller_speaker: Option<&str>,
) -> Option<NameCandidate> {
    let caller: Vec<&str> = segments
        .iter()
        .filter(|(sp, text)| match caller_speaker {
            Some(c) => sp == c,
            None => !looks_like_agent(text),
        })
        .map(|(_, t)| t.as_str())
        .collect();
    for text in &caller {
        let lower = text.to_lowercase();
        for (cue, conf) in CUES {
            let mut from = 0;
            while let Some(pos) = lower[from..].find(cue) {
                let at = from + pos;
                from = at + cue.len();
                // Whole-word cues only ("main" must not match "remain").
                let before_ok = at == 0
                    || !lower[..at]
                        .chars()
                        .last()
                        .is_some_and(|c| c.is_alphanumeric());
                if !before_ok || !text.is_char_boundary(at + cue.len()) {
                    continue;
                }
                let rest = &text[at + cue.len()..];
                if rest.chars().next().is_some_and(|c| c.is_alphanumeric()) {
                    continue;
                }
                let (name, title) = name_after(rest);
                let Some(name) = name else { continue };
                // "I'm calling", "this is about": no name; "ich bin der Meinung": not a name.
                if is_plausible_name(&name).is_err() {
                    continue;
                }
                let (name, conf) = if *cue == "main" || *cue == "मैं" {
                    // Hindi "main X bol raha hoon": only with the verb after the name.
                    let after = lower[from..].to_string();
                    if !(after.contains("bol") || after.contains("बोल")) {
                        continue;
                    }
                    (name, *conf)
                } else {
                    (name, *conf)
                };
                return Some(NameCandidate {
                    name,
                    cue: cue.to_string(),
                    evidence: text.to_string(),
                    confidence: conf,
                    title,
                });
            }
        }
        // German "Müller am Apparat" / "Schmidt hier".
        for tail in [" am apparat", " hier"] {
            if let Some(pos) = lower.find(tail) {
                let head = text[..pos]
                    .trim()
                    .trim_start_matches(|c: char| !c.is_alphanumeric());
                let last = head.split([',', '.']).next_back().unwrap_or("").trim();
                let (name, title) = name_after(last);
                if let Some(name) = name {
                    if is_plausible_name(&name).is_ok() && name.split_whitespace().count() <= 2 {
                        return Some(NameCandidate {
                            name,
                            cue: tail.trim().into(),
                            evidence: text.to_string(),
                            confidence: 0.8,
                            title,
                        });
                    }
                }
            }
        }
    }
    // A German caller answering with the surname alone: the first caller line is one or
    // two capitalized words.
    if let Some(first) = caller.first() {
        let words: Vec<&str> = first.split_whitespace().collect();
        if (1..=2).contains(&words.len()) {
            let (name, title) = name_after(first);
            if let Some(name) = name {
                if is_plausible_name(&name).is_ok()
                    && name.split_whitespace().count() == words.len() - title.is_some() as usize
                {
                    return Some(NameCandidate {
                        name,
                        cue: "surname alone".into(),
                        evidence: first.to_string(),
                        confidence: 0.6,
                        title,
                    });
                }
            }
        }
    }
    None
}

/// A model's claimed name counts only with an evidence quote that really occurs in the
/// transcript and contains the name, and only if it passes the same guard.
pub fn guard_llm_name(
    name: &str,
    evidence_quote: &str,
    transcript: &str,
) -> Result<String, String> {
    is_plausible_name(name).map_err(|why| format!("'{name}' is {why}"))?;
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    let (q, t, n) = (norm(evidence_quote), norm(transcript), norm(name));
    if q.is_empty() {
        return Err("no evidence quote given".into());
    }
    if !t.contains(&q) {
        return Err(format!(
            "evidence quote {evidence_quote:?} does not occur in the transcript"
        ));
    }
    let surname = n.split_whitespace().last().unwrap_or("");
    if !q.contains(surname) {
        return Err(format!(
            "evidence quote {evidence_quote:?} does not contain the name"
        ));
    }
    Ok(name.trim().to_string())
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameScore {
    pub score: f64,
    pub jaro_winkler: f64,
    pub phonetic_match: bool,
    pub why: String,
}

fn cologne(s: &str) -> String {
    Cologne.encode(s)
}

fn jw_token(a: &str, b: &str) -> f64 {
    let plain = strsim::jaro_winkler(a, b);
    let folded = strsim::jaro_winkler(&fold_umlauts(a), &fold_umlauts(b));
    plain.max(folded)
}

/// Similarity of an extracted name to a customer's name. A surname alone is compared with
/// the customer's surname; full names token by token.
pub fn name_similarity(a: &str, b: &str) -> NameScore {
    let (na, nb) = (normalize_name(a), normalize_name(b));
    let ta: Vec<&str> = na.split_whitespace().collect();
    let tb: Vec<&str> = nb.split_whitespace().collect();
    if ta.is_empty() || tb.is_empty() {
        return NameScore {
            score: 0.0,
            jaro_winkler: 0.0,
            phonetic_match: false,
            why: "empty name".into(),
        };
    }
    let (sa, sb) = (ta[ta.len() - 1], tb[tb.len() - 1]);
    let surname_jw = jw_token(sa, sb);
    let phonetic = {
        let (ca, cb) = (cologne(&fold_umlauts(sa)), cologne(&fold_umlauts(sb)));
        !ca.is_empty() && ca == cb
    };
    let jw = if ta.len() >= 2 && tb.len() >= 2 {
        let first = jw_token(ta[0], tb[0]);
        0.65 * surname_jw + 0.35 * first
    } else {
        surname_jw
    };
    let exact = fold_umlauts(&na) == fold_umlauts(&nb)
        || (ta.len() == 1 && fold_umlauts(sa) == fold_umlauts(sb));
    let score = if exact {
        1.0
    } else if phonetic {
        jw.max(0.9)
    } else {
        jw
    };
    let why = format!(
        "jaro-winkler {jw:.2}{}{}",
        if phonetic { ", phonetic match" } else { "" },
        if exact { ", exact" } else { "" }
    );
    NameScore {
        score,
        jaro_winkler: jw,
        phonetic_match: phonetic,
        why,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub customer_id: i64,
    pub name: String,
    pub score: f64,
    pub confidence: f64,
    pub why: String,
}

/// Rank candidates `(customer id, name, surname frequency 0..1)`. A common surname counts
/// for less than a rare one (term-frequency weighting, as in Fellegi–Sunter linkage).
pub fn rank_candidates(
    extracted: &str,
    candidates: &[(i64, String, f64)],
    _link_threshold: f64,
    review_floor: f64,
) -> Vec<RankedCandidate> {
    let mut out: Vec<RankedCandidate> = candidates
        .iter()
        .map(|(id, name, freq)| {
            let s = name_similarity(extracted, name);
            // Up to 10% off for the most common surnames.
            let penalty = 0.10 * freq.clamp(0.0, 1.0).sqrt();
            let confidence = (s.score * (1.0 - penalty)).clamp(0.0, 1.0);
            RankedCandidate {
                customer_id: *id,
                name: name.clone(),
                score: s.score,
                confidence,
                why: format!("{}; surname frequency {:.0}%", s.why, freq * 100.0),
            }
        })
        .filter(|c| c.confidence >= review_floor)
        .collect();
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(a.customer_id.cmp(&b.customer_id))
    });
    out
}

#[derive(Debug, Clone, PartialEq)]
pub enum LinkDecision {
    Link {
        customer_id: i64,
        confidence: f64,
        reason: String,
    },
    Review {
        reason: String,
    },
    NoCandidates {
        reason: String,
    },
}

/// Link only when the best is at or above the threshold and clearly ahead of the second.
pub fn link_decision(ranked: &[RankedCandidate], link_threshold: f64) -> LinkDecision {
    const MARGIN: f64 = 0.05;
    match ranked {
        [] => LinkDecision::NoCandidates {
            reason: "no customer's name is close enough".into(),
        },
        [best, rest @ ..] => {
            let second = rest.first();
            let clear = second.is_none_or(|s| best.confidence - s.confidence >= MARGIN);
            if best.confidence >= link_threshold && clear {
                LinkDecision::Link {
                    customer_id: best.customer_id,
                    confidence: best.confidence,
                    reason: format!(
                        "name matched customer #{} '{}' at {:.2} ({})",
                        best.customer_id, best.name, best.confidence, best.why
                    ),
                }
            } else {
                let scores: Vec<String> = ranked
                    .iter()
                    .take(3)
                    .map(|c| format!("{:.2}", c.confidence))
                    .collect();
                LinkDecision::Review {
                    reason: format!(
                        "name matched {} customers at {} → review{}",
                        ranked.len(),
                        scores.join("/"),
                        if best.confidence < link_threshold {
                            format!(" (best below threshold {link_threshold:.2})")
                        } else {
                            " (too close to call)".into()
                        }
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(lines: &[&str]) -> Vec<(String, String)> {
        lines
            .iter()
            .map(|l| ("caller".to_string(), l.to_string()))
            .collect()
    }

    #[test]
    fn cue_phrases_find_names() {
        let c = extract_caller_name(
            &caller(&["Ja, hallo, hier ist Frau Schreiber, ich wollte einen Termin"]),
            Some("caller"),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.title.as_deref()),
            ("Schreiber", Some("Frau"))
        );
        let c = extract_caller_name(
            &caller(&["Hi, this is John Carter calling about my order"]),
            Some("caller"),
        )
        .unwrap();
        assert_eq!(c.name, "John Carter");
    }

    #[test]
    fn greetings_are_never_names() {
        for g in [
            "guten Tag",
            "hello",
            "yes speaking",
            "Grüß Gott",
            "haan ji",
            "shalom",
            "Moin",
        ] {
            assert!(is_plausible_name(g).is_err(), "{g}");
        }
        assert!(extract_caller_name(
            &caller(&["I'm calling about the appointment"]),
            Some("caller")
        )
        .is_none());
    }

    #[test]
    fn phonetic_and_folded_matches() {
        assert!(name_similarity("Müller", "Mueller").score >= 0.99);
        assert!(name_similarity("Müller", "Miller").phonetic_match);
        assert!(name_similarity("Schreiber", "Peter Schreiber").score >= 0.99);
    }
}
