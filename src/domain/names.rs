//! The caller's name: extraction from the caller's own speech by cue phrases (German,
//! English, Hindi, Hebrew), a guard that greetings and filler never pass, and matching
//! against customers.
//!
//! Why cue phrases and not NER: in a phone call the caller introduces themselves with a
//! small set of formulas ("hier ist Frau Schreiber", "mera naam … hai", "קוראים לי …"),
//! and a formula says *whose* name it is. NER finds every name in the call, including the
//! agent's, the company's and the caller's neighbour's. Every candidate (ours or a model's)
//! passes [`is_plausible_name`], because the classic failure is "Guten Tag" stored as a
//! customer name.
//!
//! Matching follows record-linkage practice: Jaro-Winkler on plain and umlaut-folded forms
//! (Splink's levels: exact, ≥ 0.92, ≥ 0.88, ≥ 0.70), Cologne phonetics for German surnames,
//! and term-frequency weighting so that a match on "Müller" proves less than a match on
//! a rare surname.

use rphonetic::{Cologne, Encoder};
use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

// ───────────────────────────── lexicon ─────────────────────────────
// All entries lowercase, without punctuation: they are compared with normalized tokens.

/// Titles and honorifics: stripped from names, kept as a gender/politeness hint.
#[rustfmt::skip]
const TITLES: &[&str] = &[
    "herr", "herrn", "frau", "dr", "prof", "mr", "mrs", "ms", "miss", "mister", "shri", "sri",
    "shrimati", "smt", "kumari", "ji", "श्री", "श्रीमती", "सुश्री", "कुमारी", "जी", "מר", "גברת",
];

/// Honorifics that follow the name ("Sharma ji", "Sharma-ji", "शर्मा जी").
const TRAILING_HONORIFICS: &[&str] = &["ji", "जी", "sahab", "saheb", "साहब"];

/// Greeting phrases (whole utterance) that must never become a name.
#[rustfmt::skip]
const GREETING_PHRASES: &[&str] = &[
    "guten tag", "guten morgen", "guten abend", "schönen guten tag", "grüß gott", "grüss gott",
    "gruess gott", "good morning", "good afternoon", "good evening", "yes speaking", "thank you",
    "haan ji", "moin moin",
];

/// A name never starts with one of these.
#[rustfmt::skip]
const GREETING_WORDS: &[&str] = &[
    "hallo", "hello", "hi", "hey", "hiya", "servus", "moin", "tach", "guten", "good", "grüß",
    "grüss", "gruess", "namaste", "namaskar", "namaskaar", "नमस्ते", "नमस्कार", "shalom", "שלום",
    "הלו",
];

/// Words that are filler on their own: a "name" made only of these is no name.
#[rustfmt::skip]
const FILLER: &[&str] = &[
    // English
    "yes", "yeah", "yep", "no", "nope", "ok", "okay", "sure", "right", "fine", "well", "so", "um",
    "uh", "hmm", "speaking", "calling", "here", "sorry", "thanks", "thank", "you", "please",
    "pardon", "what", "who", "perfect", "great", "alright", "exactly", "correct", "bye", "goodbye",
    "morning", "afternoon", "evening",
    // German
    "ja", "jaa", "nein", "genau", "richtig", "bitte", "danke", "dankeschön", "moment", "achso",
    "also", "gut", "prima", "super", "klar", "alles", "gerne", "stimmt", "hier", "dran", "am",
    "apparat", "entschuldigung", "tag", "morgen", "abend", "gott", "wie", "was", "wer", "tschüss",
    "wiederhören",
    // Hindi
    "haan", "ha", "haa", "accha", "acha", "achha", "theek", "thik", "hai", "hain", "hoon", "nahi",
    "nahin", "dhanyavaad", "dhanyavad", "shukriya", "हाँ", "हां", "अच्छा", "ठीक", "है", "नहीं",
    "धन्यवाद",
    // Hebrew
    "כן", "לא", "טוב", "בסדר", "תודה", "רבה", "סליחה", "רגע",
];

/// Pronouns: "Ich", "Me" or "אני" are never the caller's name.
#[rustfmt::skip]
const PRONOUNS: &[&str] = &[
    "i", "me", "my", "mine", "myself", "you", "he", "she", "it", "we", "they", "him", "her", "us",
    "them", "ich", "mich", "mir", "du", "sie", "er", "es", "wir", "ihr", "ihnen", "main", "mera",
    "meri", "aap", "hum", "tum", "मैं", "मेरा", "मेरी", "आप", "हम", "אני", "אתה", "את", "הוא",
    "היא", "אנחנו", "הם",
];

/// Words that mark an organisation rather than a person.
#[rustfmt::skip]
const COMPANY_WORDS: &[&str] = &[
    "gmbh", "ag", "kg", "ohg", "ug", "ltd", "llc", "inc", "corp", "corporation", "limited", "plc",
    "pvt", "company", "firma", "support", "service", "services", "kundenservice", "kundendienst",
    "team", "hotline", "zentrale", "abteilung", "department", "praxis", "kanzlei", "autohaus",
    "apotheke", "versicherung", "bank", "motors", "realty", "clinic", "klinik", "hospital", "hotel",
    "restaurant", "sanitär", "store", "shop", "solutions", "group", "gruppe", "מרפאת", "מרפאה",
    "חברת", "חברה",
];

/// Ordinary words that follow an intro cue but are not names ("ich bin der Meinung",
/// "I'm Customer 4711", "ich bin Kunde bei Ihnen"). Occupational surnames (Koch, Richter,
/// Schreiber, Müller, Weber) are deliberately absent.
#[rustfmt::skip]
const COMMON_WORDS: &[&str] = &[
    "kunde", "kundin", "customer", "client", "patient", "patientin", "meinung", "ansicht", "mutter",
    "vater", "sohn", "tochter", "mann", "ehemann", "ehefrau", "nachbar", "nachbarin", "chef",
    "chefin", "inhaber", "inhaberin", "mieter", "mieterin", "vermieter", "termin", "rechnung",
    "frage", "auftrag", "bestellung", "problem", "anruf", "interesse", "invoice", "order",
    "appointment", "account", "bill", "question", "issue", "delivery", "owner", "manager", "montag",
    "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag", "monday", "tuesday",
    "wednesday", "thursday", "friday", "saturday", "sunday", "unknown", "anonymous", "anonym",
    "unbekannt", "name", "naam", "नाम", "שם",
];

/// Function words that never belong to a name. Name particles (von, van, de, der, bin,
/// ben, al, …) are deliberately absent: "Ursula von der Leyen" is a name.
#[rustfmt::skip]
const FUNCTION_WORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "about", "from", "with", "for", "to", "in", "on", "is", "was",
    "not", "regarding", "und", "oder", "nicht", "kein", "keine", "wegen", "mit", "für", "das",
    "ein", "eine", "aur", "se", "ko", "ka", "ki", "और", "से", "को", "का", "की", "עם", "על", "לגבי",
    "של",
];

/// Words that end a name being read after a cue ("this is John *calling* about…").
#[rustfmt::skip]
const STOP_WORDS: &[&str] = &[
    // English
    "and", "from", "about", "calling", "call", "called", "speaking", "here", "with", "at", "for",
    "of", "to", "in", "on", "regarding", "the", "a", "an", "my", "your", "i", "i'm", "is", "was",
    "but", "please", "again", "also", "just", "not", "still", "yes", "no", "ok", "okay", "sir",
    "wanted", "want", "would", "need", "have", "had", "back", "who", "how",
    // German
    "und", "von", "vom", "aus", "bei", "wegen", "am", "im", "hier", "ich", "mit", "für", "fuer",
    "zu", "zum", "zur", "der", "die", "das", "den", "dem", "ein", "eine", "ja", "nein", "bitte",
    "danke", "möchte", "moechte", "wollte", "will", "hätte", "haette", "habe", "hab", "rufe",
    "wieder", "auch", "nur", "noch", "schon", "nicht", "kein", "keine", "gerne", "gern", "an",
    "egal",
    // Hindi (romanized and Devanagari)
    "hai", "hain", "hoon", "hun", "hu", "bol", "baat", "se", "ko", "ka", "ki", "ke", "aur", "sahab",
    "raha", "rahi", "kar", "ne", "है", "हैं", "हूँ", "हूं", "हु", "बोल", "बात", "से", "को", "का",
    "की", "के", "और", "रहा", "रही",
    // Hebrew
    "ו", "עם", "על", "לגבי", "בקשר", "בעניין", "של", "את", "זה", "זאת", "אני", "ואני", "רוצה",
    "רציתי", "צריך", "צריכה", "מתקשר", "מתקשרת", "פונה", "מבקש", "מבקשת", "יכול", "יכולה", "חושב",
    "חושבת", "לא", "כן", "גם", "רק", "מ", "כי", "אבל", "מאוד", "פה", "כאן", "שוב", "מחכה", "מנסה",
    "מעוניין", "מעוניינת", "שמח", "שמחה", "מצטער", "מצטערת", "בסדר", "תודה", "שלום", "רגע", "הוא",
    "היא", "מדבר", "מדברת", "לקוח", "לקוחה", "ה", "מה", "איך", "למה", "בבקשה",
];

/// Phrases only the agent says; a segment containing one is the agent's greeting.
#[rustfmt::skip]
const AGENT_SERVICE_PHRASES: &[&str] = &[
    "how can i help", "how may i help", "how can we help", "what can i do for you",
    "thank you for calling", "thanks for calling", "was kann ich für sie tun",
    "was kann ich fuer sie tun", "wie kann ich ihnen helfen", "wie kann ich helfen",
    "danke für ihren anruf", "vielen dank für ihren anruf", "kya madad kar", "kaise madad kar",
    "क्या मदद कर", "कैसे मदद कर", "איך אפשר לעזור", "במה אפשר לעזור", "איך אוכל לעזור",
    "במה אוכל לעזור",
];

/// After "<intro> <name>", these introduce the agent's employer ("this is Sarah from ACME").
const AGENT_EMPLOYER_WORDS: &[&str] = &["from", "von", "bei", "at", "with"];

// ───────────────────────────── cues ─────────────────────────────

/// How much a cue constrains what follows it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum CueKind {
    /// Explicitly names ("my name is"): lowercase names from STT are accepted.
    Explicit,
    /// An introduction ("this is", "hier ist"): Latin-script names must be capitalized.
    Intro,
    /// Hindi "main X bol raha hoon": only counts with the verb after the name.
    NeedsVerb,
    /// Hebrew "אני X" ("I am X"): weak, so the name must end the clause.
    Weak,
}

struct Cue {
    words: &'static [&'static str],
    confidence: f64,
    kind: CueKind,
    /// Tokens that may sit between cue and name ("ich bin *der* Peter", "השם שלי *הוא* דוד").
    skip: &'static [&'static str],
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
const LEAD_CUES: &[Cue] = &[
    cue(&["my", "name", "is"], 0.95, CueKind::Explicit),
    cue(&["my", "name's"], 0.95, CueKind::Explicit),
    cue(&["mein", "name", "ist"], 0.95, CueKind::Explicit),
    cue(&["ich", "heiße"], 0.9, CueKind::Explicit),
    cue(&["ich", "heisse"], 0.9, CueKind::Explicit),
    cue(&["mera", "naam"], 0.95, CueKind::Explicit),
    cue(&["mera", "nam"], 0.95, CueKind::Explicit),
    cue(&["मेरा", "नाम"], 0.95, CueKind::Explicit),
    cue(&["קוראים", "לי"], 0.95, CueKind::Explicit),
    cue(&["שמי"], 0.9, CueKind::Explicit),
    Cue {
        words: &["השם", "שלי"],
        confidence: 0.9,
        kind: CueKind::Explicit,
        skip: &["הוא"],
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
    cue(&["אני"], 0.55, CueKind::Weak),
];

/// Verbs that must follow the name after a Hindi "main" cue.
const HINDI_SPEAK_VERBS: &[&str] = &["bol", "baat", "बोल", "बात"];

/// Cues after the name ("Müller am Apparat", "John speaking", "Rahul bol raha hoon").
/// `true` = romanized/uncased speech where lowercase names are accepted.
const TAIL_CUES: &[(&[&str], f64, bool)] = &[
    (&["am", "apparat"], 0.85, false),
    (&["speaking"], 0.8, false),
    (&["hier"], 0.7, false),
    (&["bol", "raha"], 0.85, true),
    (&["bol", "rahi"], 0.85, true),
    (&["baat", "kar", "raha"], 0.85, true),
    (&["baat", "kar", "rahi"], 0.85, true),
    (&["बोल", "रहा"], 0.85, true),
    (&["बोल", "रही"], 0.85, true),
    (&["बात", "कर", "रहा"], 0.85, true),
    (&["बात", "कर", "रही"], 0.85, true),
    (&["מדבר"], 0.8, true),
    (&["מדברת"], 0.8, true),
];

/// A surname alone as the first words of the call (German habit): weak evidence.
const SURNAME_ALONE_CONFIDENCE: f64 = 0.5;
const SURNAME_ALONE_WITH_TITLE_CONFIDENCE: f64 = 0.6;
/// At most this many name tokens are read after a cue.
const MAX_NAME_TOKENS: usize = 3;

// ───────────────────────────── extraction ─────────────────────────────

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
}

/// One word of an utterance.
#[derive(Debug, Clone)]
struct Tok {
    /// The whitespace-separated piece as written, punctuation included (for evidence).
    raw: String,
    /// The word without surrounding punctuation, original case.
    word: String,
    lower: String,
    /// Punctuation right after the word ("," "." "?"), empty if none.
    tail: String,
    /// Punctuation followed the word: a clause boundary.
    punct_after: bool,
    /// The punctuation ends a sentence ('.', '!', '?', '।'), unless the word is a title
    /// abbreviation or an initial ("Dr.", "J.").
    sentence_end: bool,
}

fn is_mark(c: char) -> bool {
    // Combining marks: Rust's std has no general-category test, so the ranges that occur
    // in our languages (Latin diacritics, Hebrew points, Indic vowel signs, ZWJ/ZWNJ).
    matches!(c as u32,
        0x0300..=0x036F | 0x0591..=0x05BD | 0x05BF | 0x05C1..=0x05C2 | 0x05C4..=0x05C5 | 0x05C7
        | 0x0610..=0x061A | 0x064B..=0x065F | 0x0670 | 0x0900..=0x0903 | 0x093A..=0x094F
        | 0x0951..=0x0957 | 0x0962..=0x0963 | 0x0981..=0x0983 | 0x09BC..=0x09D7 | 0x0A01..=0x0A03
        | 0x0A3C..=0x0A51 | 0x0A81..=0x0A83 | 0x0ABC..=0x0ACD | 0x200C..=0x200D)
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || is_mark(c)
}

/// NFKC, typographic apostrophes made plain: the form every comparison starts from.
fn canonical(s: &str) -> String {
    s.nfkc()
        .map(|c| {
            if matches!(c, '\u{2019}' | '\u{2018}' | '\u{02BC}' | '`' | '´') {
                '\''
            } else {
                c
            }
        })
        .collect()
}

fn tokenize(text: &str) -> Vec<Tok> {
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
            }
        }
        if start >= end {
            continue;
        }
        let (word, tail) = (&raw[start..end], &raw[end..]);
        let lower = word.to_lowercase();
        let abbreviation = TITLES.contains(&lower.as_str()) || word.chars().count() == 1;
        out.push(Tok {
            raw: raw.to_string(),
            word: word.to_string(),
            tail: tail.to_string(),
            punct_after: !tail.is_empty(),
            sentence_end: tail.contains(['.', '!', '?', '।', '…']) && !abbreviation,
            lower,
        });
    }
    out
}

/// Sentences as token ranges.
fn sentences(toks: &[Tok]) -> Vec<std::ops::Range<usize>> {
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

fn sentence_text(toks: &[Tok], at: usize) -> String {
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

fn is_cased(c: char) -> bool {
    c.is_uppercase() || c.is_lowercase()
}

/// Could this token be part of a name? Latin/cased scripts need a capital letter unless
/// `allow_lower` (explicit cues, romanized Hindi); uncased scripts (Devanagari, Hebrew)
/// rely on the stop-word list instead.
fn is_name_token(t: &Tok, allow_lower: bool) -> bool {
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

fn is_title(lower: &str) -> bool {
    TITLES.contains(&lower) && !TRAILING_HONORIFICS.contains(&lower)
}

/// "rahul" → "Rahul": names read from lowercase STT output are stored capitalized.
fn capitalize(w: &str) -> String {
    let mut cs = w.chars();
    match cs.next() {
        Some(f) if f.is_lowercase() => f.to_uppercase().chain(cs).collect(),
        _ => w.to_string(),
    }
}

/// A name read from the tokens, with any titles around it.
struct Found {
    name: Vec<String>,
    titles: Vec<String>,
    /// Index just past the last name token (or honorific).
    end: usize,
    /// Index of the first name token.
    start: usize,
}

/// Read titles and up to [`MAX_NAME_TOKENS`] name tokens starting at `k`.
fn read_name_forward(toks: &[Tok], mut k: usize, allow_lower: bool) -> Option<Found> {
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
        // "Sharma-ji": the honorific is glued on.
        let (word, glued) = match t.word.rsplit_once('-') {
            Some((w, h))
                if TRAILING_HONORIFICS.contains(&h.to_lowercase().as_str()) && !w.is_empty() =>
            {
                (w, Some(h))
            }
            _ => (t.word.as_str(), None),
        };
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
        if !toks[k - 1].punct_after {
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
    let ordinary = [COMPANY_WORDS, COMMON_WORDS]
        .iter()
        .any(|l| l.contains(&next.lower.as_str()));
    (capital && !ordinary && !is_title(&next.lower) && is_name_token(next, false)).then_some(n)
}

fn is_hindi_terminator(lower: &str) -> bool {
    matches!(lower, "hai" | "hoon" | "hun" | "है" | "हूँ" | "हूं") || HINDI_SPEAK_VERBS.contains(&lower)
}

fn title_text(t: &Tok) -> String {
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

/// Read the name ending just before `cue_at` ("Frau Müller | am Apparat"). The name must
/// start its clause: "der Termin hier" is not "Termin".
fn read_name_backward(toks: &[Tok], cue_at: usize, allow_lower: bool) -> Option<Found> {
    let mut k = cue_at;
    let mut name = Vec::new();
    while k > 0 && name.len() < MAX_NAME_TOKENS {
        let t = &toks[k - 1];
        if t.punct_after || is_title(&t.lower) || !is_name_token(t, allow_lower) {
            break;
        }
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
    };
    if !clause_start {
        return None;
    }
    name.reverse();
    titles.reverse();
    Some(Found {
        name,
        titles,
        end: cue_at,
        start,
    })
}

fn matches_at(toks: &[Tok], at: usize, words: &[&str]) -> bool {
    words.len() <= toks.len().saturating_sub(at)
        && words.iter().enumerate().all(|(i, w)| {
            let t = &toks[at + i];
            // Only the last cue word may carry punctuation ("my name is: …").
            t.lower == *w && (i + 1 == words.len() || !t.punct_after)
        })
}

/// A candidate plus where it was found, to prefer the earliest among equals.
struct Scored {
    candidate: NameCandidate,
    segment: usize,
    token: usize,
}

fn candidate(found: Found, cue: String, toks: &[Tok], confidence: f64) -> Option<NameCandidate> {
    let name = found.name.join(" ");
    is_plausible_name(&name).ok()?;
    Some(NameCandidate {
        name,
        cue,
        evidence: sentence_text(toks, found.start.min(toks.len().saturating_sub(1))),
        confidence,
        title: (!found.titles.is_empty()).then(|| found.titles.join(" ")),
    })
}

/// Names introduced by a cue phrase in one utterance, with their token positions.
fn cue_candidates(toks: &[Tok]) -> Vec<(NameCandidate, usize)> {
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
            let Some(found) = read_name_forward(toks, k, allow_lower) else {
                continue;
            };
            let next = toks.get(found.end);
            let accepted = match c.kind {
                CueKind::Explicit | CueKind::Intro => true,
                CueKind::NeedsVerb => {
                    next.is_some_and(|t| HINDI_SPEAK_VERBS.contains(&t.lower.as_str()))
                }
                CueKind::Weak => {
                    found.name.len() <= 2 && (next.is_none() || toks[found.end - 1].punct_after)
                }
            };
            if !accepted {
                continue;
            }
            if let Some(cand) = candidate(found, c.words.join(" "), toks, c.confidence) {
                out.push((cand, at));
            }
        }
        for (words, confidence, allow_lower) in TAIL_CUES {
            if !matches_at(toks, at, words) || at == 0 {
                continue;
            }
            let Some(found) = read_name_backward(toks, at, *allow_lower) else {
                continue;
            };
            let start = found.start;
            if let Some(cand) =
                candidate(found, format!("… {}", words.join(" ")), toks, *confidence)
            {
                out.push((cand, start));
            }
        }
    }
    out
}

/// Germans often answer with their surname alone ("Müller.", "Ja, Frau Müller?", "Müller,
/// guten Tag"): the first sentence of the caller's first utterance that is not pure
/// greeting, if it is (title +) one or two capitalized words.
fn surname_alone(toks: &[Tok]) -> Option<NameCandidate> {
    let is_filler = |t: &Tok| {
        FILLER.contains(&t.lower.as_str())
            || GREETING_WORDS.contains(&t.lower.as_str())
            || t.lower == "ji"
    };
    for range in sentences(toks) {
        let words = &toks[range.clone()];
        let core_start = words.iter().position(|t| !is_filler(t));
        let Some(core_start) = core_start else {
            continue;
        }; // all greeting: try the next sentence
        let core_end = words
            .iter()
            .rposition(|t| !is_filler(t))
            .map_or(core_start, |i| i + 1);
        let core = &words[core_start..core_end];
        let titles: Vec<String> = core
            .iter()
            .take_while(|t| is_title(&t.lower))
            .map(title_text)
            .collect();
        let name_toks = &core[titles.len()..];
        let all_capitalized = name_toks.iter().all(|t| {
            is_name_token(t, false) && t.word.chars().next().is_some_and(|c| c.is_uppercase())
        });
        // Only the last name token may be followed by punctuation ("Müller, Peter" is fine
        // too, but "Termin, bitte" is no name: the filler strip already took "bitte").
        if !(1..=2).contains(&name_toks.len()) || !all_capitalized {
            return None;
        }
        let name = name_toks
            .iter()
            .map(|t| t.word.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        is_plausible_name(&name).ok()?;
        let confidence = if titles.is_empty() {
            SURNAME_ALONE_CONFIDENCE
        } else {
            SURNAME_ALONE_WITH_TITLE_CONFIDENCE
        };
        return Some(NameCandidate {
            name,
            cue: "surname alone".into(),
            evidence: words
                .iter()
                .map(|t| t.raw.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            confidence,
            title: (!titles.is_empty()).then(|| titles.join(" ")),
        });
    }
    None
}

/// Is this segment the agent's greeting? A service phrase ("how can I help", "was kann
/// ich für Sie tun") or an introduction followed by the employer ("this is Sarah from ACME").
fn looks_like_agent(text: &str) -> bool {
    let flat = format!(" {} ", flatten(text));
    if AGENT_SERVICE_PHRASES
        .iter()
        .any(|p| flat.contains(&format!(" {p} ")))
    {
        return true;
    }
    let toks = tokenize(text);
    if toks.first().is_some_and(|t| t.lower == "firma") {
        return true;
    }
    (0..toks.len()).any(|at| {
        LEAD_CUES
            .iter()
            .filter(|c| c.kind != CueKind::Weak)
            .any(|c| {
                matches_at(&toks, at, c.words)
                    && read_name_forward(&toks, at + c.words.len(), false)
                        .and_then(|f| toks.get(f.end))
                        .is_some_and(|t| AGENT_EMPLOYER_WORDS.contains(&t.lower.as_str()))
            })
    })
}

/// Lowercase words separated by single spaces, punctuation gone: for phrase matching.
fn flatten(s: &str) -> String {
    canonical(s)
        .to_lowercase()
        .chars()
        .map(|c| if is_word_char(c) || c == '\'' { c } else { ' ' })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The segments that are the caller's speech. With diarization but no roles, a speaker
/// who gave the agent's greeting is the agent for the whole call; without diarization
/// (one label for everything) only the greeting segments themselves are dropped.
fn caller_segments<'a>(
    segments: &'a [(String, String)],
    caller_speaker: Option<&str>,
) -> Vec<&'a str> {
    if let Some(caller) = caller_speaker {
        return segments
            .iter()
            .filter(|(sp, _)| sp == caller)
            .map(|(_, t)| t.as_str())
            .collect();
    }
    let agent_like: Vec<bool> = segments.iter().map(|(_, t)| looks_like_agent(t)).collect();
    let mut labels: Vec<&str> = segments.iter().map(|(sp, _)| sp.as_str()).collect();
    labels.sort_unstable();
    labels.dedup();
    let agents: Vec<&str> = segments
        .iter()
        .zip(&agent_like)
        .filter(|(_, a)| **a)
        .map(|((sp, _), _)| sp.as_str())
        .collect();
    let diarized = labels.len() > 1 && labels.iter().any(|l| !agents.contains(l));
    segments
        .iter()
        .zip(&agent_like)
        .filter(|((sp, _), agent)| {
            if diarized {
                !agents.contains(&sp.as_str())
            } else {
                !**agent
            }
        })
        .map(|((_, t), _)| t.as_str())
        .collect()
}

/// Find the caller's self-introduction in `(speaker, text)` segments. With
/// `caller_speaker`, only that speaker's segments count; without it, the agent's greeting
/// is recognized and skipped. The most confident candidate wins, the earliest among equals.
pub fn extract_caller_name(
    segments: &[(String, String)],
    caller_speaker: Option<&str>,
) -> Option<NameCandidate> {
    let caller = caller_segments(segments, caller_speaker);
    let mut found: Vec<Scored> = Vec::new();
    for (i, text) in caller.iter().enumerate() {
        let toks = tokenize(text);
        for (candidate, token) in cue_candidates(&toks) {
            found.push(Scored {
                candidate,
                segment: i,
                token,
            });
        }
        if i == 0 {
            if let Some(candidate) = surname_alone(&toks) {
                found.push(Scored {
                    candidate,
                    segment: i,
                    token: 0,
                });
            }
        }
    }
    found
        .into_iter()
        .min_by(|a, b| {
            b.candidate
                .confidence
                .total_cmp(&a.candidate.confidence)
                .then(a.segment.cmp(&b.segment))
                .then(a.token.cmp(&b.token))
        })
        .map(|s| s.candidate)
}

// ───────────────────────────── guards ─────────────────────────────

/// The guard every name passes, from the rules or from a model. `Err` says why not.
pub fn is_plausible_name(s: &str) -> Result<(), &'static str> {
    const MAX_CHARS: usize = 60;
    const MAX_TOKENS: usize = 4;
    // Cheap bound before any normalization work on hostile input.
    if s.len() > 1024 {
        return Err("too long for a name (more than 60 characters)");
    }
    let plain = flatten(s);
    let plain_tokens: Vec<&str> = plain.split_whitespace().collect();
    if plain_tokens.is_empty() {
        return Err("empty");
    }
    let greeting_or_filler =
        |t: &&str| FILLER.contains(t) || GREETING_WORDS.contains(t) || *t == "ji";
    if GREETING_PHRASES.contains(&plain.as_str()) || plain_tokens.iter().all(greeting_or_filler) {
        return Err("a greeting or filler, not a name");
    }
    let text = canonical(s);
    let text = text.trim();
    if text.chars().any(char::is_numeric) {
        return Err("contains digits");
    }
    if text.chars().count() > MAX_CHARS {
        return Err("too long for a name (more than 60 characters)");
    }
    if text
        .chars()
        .any(|c| !(c.is_alphabetic() || is_mark(c) || c == ' ' || "-'.,".contains(c)))
    {
        return Err("contains characters a name does not have");
    }
    let n = normalize_name(s);
    let tokens: Vec<&str> = n.split_whitespace().collect();
    if tokens.is_empty() {
        return Err("only a title, no name");
    }
    if tokens.len() > MAX_TOKENS {
        return Err("too long for a name (more than 4 words)");
    }
    if GREETING_WORDS.contains(&plain_tokens[0])
        || GREETING_PHRASES
            .iter()
            .any(|g| plain.starts_with(&format!("{g} ")))
    {
        return Err("starts with a greeting");
    }
    if tokens.iter().any(|t| PRONOUNS.contains(t)) {
        return Err("a pronoun, not a name");
    }
    if tokens.iter().any(|t| COMPANY_WORDS.contains(t)) {
        return Err("looks like a company, not a person");
    }
    if tokens
        .iter()
        .any(|t| COMMON_WORDS.contains(t) || FUNCTION_WORDS.contains(t))
    {
        return Err("contains an ordinary word, not a name");
    }
    if n.chars().filter(|c| c.is_alphabetic()).count() < 2 {
        return Err("too short for a name");
    }
    Ok(())
}

/// A model's claimed name counts only with an evidence quote that really occurs in the
/// transcript (compared without case, punctuation and extra whitespace) and contains
/// every word of the name, and only if the name passes [`is_plausible_name`]. `Ok` is the
/// name with titles removed, as the rules would have produced it.
pub fn guard_llm_name(
    name: &str,
    evidence_quote: &str,
    transcript: &str,
) -> Result<String, String> {
    let shown = |s: &str| -> String {
        let head: String = s.chars().take(80).collect();
        if head.len() < s.len() {
            format!("{head:?}…")
        } else {
            format!("{head:?}")
        }
    };
    is_plausible_name(name)
        .map_err(|why| format!("{} is not a plausible name: {why}", shown(name.trim())))?;
    let quote = flatten(evidence_quote);
    if quote.is_empty() {
        return Err("no evidence quote given".into());
    }
    if !format!(" {} ", flatten(transcript)).contains(&format!(" {quote} ")) {
        return Err(format!(
            "evidence quote {} does not occur in the transcript",
            shown(evidence_quote)
        ));
    }
    let quote_words: Vec<String> = quote.split_whitespace().map(fold_umlauts).collect();
    for word in normalize_name(name).split_whitespace() {
        if !quote_words.contains(&fold_umlauts(word)) {
            return Err(format!(
                "evidence quote {} does not contain {word:?}",
                shown(evidence_quote)
            ));
        }
    }
    let kept: Vec<&str> = name
        .split_whitespace()
        .filter(|w| !TITLES.contains(&flatten(w).as_str()))
        .collect();
    Ok(kept.join(" "))
}

// ───────────────────────────── normalization ─────────────────────────────

/// NFKC, lowercase, titles stripped, punctuation removed (apostrophes join: O'Brien →
/// obrien; hyphens separate: Müller-Lüdenscheidt → müller lüdenscheidt), whitespace collapsed.
pub fn normalize_name(s: &str) -> String {
    let lower = canonical(s).to_lowercase();
    let spaced: String = lower
        .chars()
        .filter(|c| *c != '\'')
        .map(|c| if is_word_char(c) { c } else { ' ' })
        .collect();
    spaced
        .split_whitespace()
        .filter(|t| !TITLES.contains(t))
        .collect::<Vec<_>>()
        .join(" ")
}

/// German umlauts and ß spelled out (ä→ae, ö→oe, ü→ue, ß→ss), on composed text so that a
/// decomposed "u\u{308}" folds too.
pub fn fold_umlauts(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.nfc() {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'Ä' => out.push_str("Ae"),
            'Ö' => out.push_str("Oe"),
            'Ü' => out.push_str("Ue"),
            'ß' => out.push_str("ss"),
            'ẞ' => out.push_str("SS"),
            c => out.push(c),
        }
    }
    out
}

// ───────────────────────────── matching ─────────────────────────────

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameScore {
    /// 0..1 after exact/phonetic adjustments: what ranking uses.
    pub score: f64,
    /// The raw Jaro-Winkler of the compared tokens (best of plain and umlaut-folded).
    pub jaro_winkler: f64,
    /// The surnames share a Cologne phonetic code.
    pub phonetic_match: bool,
    pub why: String,
}

/// A phonetic match alone lifts a pair to this score: enough to be shown for review,
/// not enough to link at the usual thresholds (Cologne codes are coarse: Meier, Mayer and
/// Mohr all encode to 67).
const PHONETIC_FLOOR: f64 = 0.80;
/// A single spoken word matching only a customer's first name is weak evidence.
const FIRST_NAME_ONLY_FACTOR: f64 = 0.8;
/// Full-name weights: the surname carries most of the identity.
const SURNAME_WEIGHT: f64 = 0.65;

/// How two name tokens compare.
#[derive(Debug, Clone, Copy)]
struct TokenSim {
    jw: f64,
    phonetic: bool,
    exact: bool,
}

impl TokenSim {
    fn score(self) -> f64 {
        if self.exact {
            1.0
        } else if self.phonetic {
            self.jw.max(PHONETIC_FLOOR)
        } else {
            self.jw
        }
    }
}

fn token_sim(a: &str, b: &str) -> TokenSim {
    let (fa, fb) = (fold_umlauts(a), fold_umlauts(b));
    let jw = strsim::jaro_winkler(a, b).max(strsim::jaro_winkler(&fa, &fb));
    let (ca, cb) = (Cologne.encode(&fa), Cologne.encode(&fb));
    // Cologne ignores non-Latin letters; a one-digit code says too little to count.
    let phonetic = ca.len() >= 2 && ca == cb;
    TokenSim {
        jw,
        phonetic,
        exact: fa == fb,
    }
}

/// Splink's default Jaro-Winkler levels, named for the trace.
fn level(score: f64, exact: bool) -> &'static str {
    if exact {
        "exact"
    } else if score >= 0.92 {
        "jw≥0.92"
    } else if score >= 0.88 {
        "jw≥0.88"
    } else if score >= 0.70 {
        "jw≥0.70"
    } else {
        "below 0.70"
    }
}

/// Similarity of an extracted name to a customer's name, 0..1. Both plain and
/// umlaut-folded forms are compared; a surname alone ("Schreiber") is compared with the
/// customer's surname; full names token by token (also in swapped order, as Indian names
/// are often said surname first); Cologne phonetics catch Müller/Mueller/Miller.
pub fn name_similarity(a: &str, b: &str) -> NameScore {
    let (na, nb) = (normalize_name(a), normalize_name(b));
    let ta: Vec<&str> = na.split_whitespace().collect();
    let tb: Vec<&str> = nb.split_whitespace().collect();
    let (Some(a_last), Some(b_last)) = (ta.last(), tb.last()) else {
        return NameScore {
            score: 0.0,
            jaro_winkler: 0.0,
            phonetic_match: false,
            why: "empty name".into(),
        };
    };
    if fold_umlauts(&na) == fold_umlauts(&nb) {
        let phonetic_match = token_sim(a_last, b_last).phonetic;
        return NameScore {
            score: 1.0,
            jaro_winkler: 1.0,
            phonetic_match,
            why: "exact".into(),
        };
    }
    // (score, jw, phonetic, exact surname, note)
    let mut options: Vec<(f64, f64, bool, bool, &str)> = Vec::new();
    if ta.len() >= 2 && tb.len() >= 2 {
        for (swapped, sur, first) in [
            (false, token_sim(a_last, b_last), token_sim(ta[0], tb[0])),
            (true, token_sim(ta[0], b_last), token_sim(a_last, tb[0])),
        ] {
            let score = SURNAME_WEIGHT * sur.score() + (1.0 - SURNAME_WEIGHT) * first.score();
            let jw = SURNAME_WEIGHT * sur.jw + (1.0 - SURNAME_WEIGHT) * first.jw;
            let note = if swapped {
                "full names, swapped order"
            } else {
                "full names"
            };
            options.push((score, jw, sur.phonetic, false, note));
        }
    } else {
        // One side is a single word: the surname, or (weakly) a first name.
        let (single, other) = if ta.len() == 1 {
            (ta[0], &tb)
        } else {
            (tb[0], &ta)
        };
        let sur = token_sim(single, other[other.len() - 1]);
        let note = if other.len() > 1 {
            "surname only"
        } else {
            "single names"
        };
        options.push((sur.score(), sur.jw, sur.phonetic, sur.exact, note));
        if other.len() > 1 {
            let first = token_sim(single, other[0]);
            options.push((
                first.score() * FIRST_NAME_ONLY_FACTOR,
                first.jw,
                false,
                false,
                "first name only",
            ));
        }
    }
    let (score, jw, phonetic, exact, note) = options
        .into_iter()
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .unwrap_or((0.0, 0.0, false, false, "no comparison"));
    let why = format!(
        "{} ({note}): jaro-winkler {jw:.2}{}",
        level(score, exact),
        if phonetic { ", phonetic match" } else { "" }
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
    /// The customer's name as stored.
    pub name: String,
    /// The name as extracted from the call (the same for every candidate of one ranking).
    #[serde(default)]
    pub extracted: String,
    /// Name similarity before frequency weighting.
    pub score: f64,
    /// Similarity after frequency weighting: what link decisions use.
    pub confidence: f64,
    pub why: String,
}

/// Surnames at or below this share of customers count fully.
const TF_RARE_SHARE: f64 = 0.001;
/// A surname every customer has loses this much confidence.
const TF_MAX_PENALTY: f64 = 0.15;

/// Term-frequency penalty for a surname held by `share` (0..1) of customers. In
/// Fellegi–Sunter linkage agreement on a value weighs log(m/u) with u ≈ the value's
/// frequency, so evidence falls with log(share): the penalty grows linearly in
/// log(share) from 0 at the rare reference share up to [`TF_MAX_PENALTY`] at share 1.
fn tf_penalty(share: f64) -> f64 {
    let share = share01(share);
    if share <= TF_RARE_SHARE {
        return 0.0;
    }
    (TF_MAX_PENALTY * (share / TF_RARE_SHARE).ln() / (1.0 / TF_RARE_SHARE).ln())
        .clamp(0.0, TF_MAX_PENALTY)
}

/// A share as given by the caller, made safe: NaN and infinities count as unknown (0).
fn share01(share: f64) -> f64 {
    if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Rank candidates `(customer id, name, surname share 0..1 — higher = more common)` for an
/// extracted name, best first; those below `review_floor` are dropped. A common surname
/// counts for less than a rare one (see [`tf_penalty`]).
pub fn rank_candidates(
    extracted: &str,
    candidates: &[(i64, String, f64)],
    link_threshold: f64,
    review_floor: f64,
) -> Vec<RankedCandidate> {
    let mut out: Vec<RankedCandidate> = candidates
        .iter()
        .map(|(id, name, share)| {
            let s = name_similarity(extracted, name);
            let penalty = tf_penalty(*share);
            let confidence = (s.score * (1.0 - penalty)).clamp(0.0, 1.0);
            let clears = if confidence >= link_threshold {
                ", clears link threshold"
            } else {
                ""
            };
            RankedCandidate {
                customer_id: *id,
                name: name.clone(),
                extracted: extracted.to_string(),
                score: s.score,
                confidence,
                why: format!(
                    "{}; surname share {:.1}% → −{:.0}%{clears}",
                    s.why,
                    share01(*share) * 100.0,
                    penalty * 100.0
                ),
            }
        })
        .filter(|c| c.confidence > 0.0 && c.confidence >= review_floor)
        .collect();
    out.sort_by(|a, b| {
        b.confidence
            .total_cmp(&a.confidence)
            .then(b.score.total_cmp(&a.score))
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

/// The best candidate must beat the second by this much to be linked without a person.
pub const LINK_MARGIN: f64 = 0.05;

/// Link only when the best candidate is at or above `link_threshold` AND clearly ahead of
/// the second ([`LINK_MARGIN`]); otherwise review, or no candidates at all.
pub fn link_decision(ranked: &[RankedCandidate], link_threshold: f64) -> LinkDecision {
    let Some(best) = ranked.first() else {
        return LinkDecision::NoCandidates {
            reason: "no customer's name is close enough to review".into(),
        };
    };
    let who = format!("name '{}'", best.extracted);
    let second = ranked.get(1);
    // A hair of tolerance so 0.95 vs 0.90 counts as the 0.05 it is meant to be.
    let clear = second.is_none_or(|s| best.confidence - s.confidence >= LINK_MARGIN - 1e-9);
    if best.confidence >= link_threshold && clear {
        let next = second.map_or(String::from("no other candidate"), |s| {
            format!("next best {:.2}", s.confidence)
        });
        return LinkDecision::Link {
            customer_id: best.customer_id,
            confidence: best.confidence,
            reason: format!(
                "{who} matched customer #{} '{}' at {:.2} ({}); {next}",
                best.customer_id, best.name, best.confidence, best.why
            ),
        };
    }
    let scores: Vec<String> = ranked
        .iter()
        .take(3)
        .map(|c| format!("{:.2}", c.confidence))
        .collect();
    let plural = if ranked.len() == 1 { "" } else { "s" };
    let because = if best.confidence < link_threshold {
        format!(
            "best '{}' below link threshold {link_threshold:.2}",
            best.name
        )
    } else {
        format!("top two within {LINK_MARGIN:.2}")
    };
    LinkDecision::Review {
        reason: format!(
            "{who} matched {} customer{plural} at {} → review ({because})",
            ranked.len(),
            scores.join("/")
        ),
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

    fn name_of(lines: &[&str]) -> Option<String> {
        extract_caller_name(&caller(lines), Some("caller")).map(|c| c.name)
    }

    #[test]
    fn cue_phrases_find_names_and_titles() {
        let c = extract_caller_name(
            &caller(&["Ja, hallo, hier ist Frau Schreiber, ich wollte einen Termin"]),
            Some("caller"),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.title.as_deref(), c.cue.as_str()),
            ("Schreiber", Some("Frau"), "hier ist")
        );
        let c = extract_caller_name(
            &caller(&["Guten Tag, hier spricht Herr Dr. Weber."]),
            Some("caller"),
        )
        .unwrap();
        assert_eq!(
            (c.name.as_str(), c.title.as_deref()),
            ("Weber", Some("Herr Dr."))
        );
        assert_eq!(
            name_of(&["Hi, this is John Carter calling about my order"]).as_deref(),
            Some("John Carter")
        );
        assert_eq!(
            name_of(&["namaste, main Sharma-ji bol raha hoon"]).as_deref(),
            Some("Sharma")
        );
    }

    #[test]
    fn evidence_is_the_sentence() {
        let c = extract_caller_name(
            &caller(&["Guten Tag. Mein Name ist Anna Weber. Ich habe eine Frage."]),
            Some("caller"),
        )
        .unwrap();
        assert_eq!(c.evidence, "Mein Name ist Anna Weber.");
    }

    #[test]
    fn lowercase_stt_output_still_yields_explicit_names() {
        assert_eq!(
            name_of(&["my name is john carter and i need help"]).as_deref(),
            Some("John Carter")
        );
        assert_eq!(
            name_of(&["mera naam rahul sharma hai"]).as_deref(),
            Some("Rahul Sharma")
        );
        // An intro cue needs a capital: "this is about…" is not a name.
        assert_eq!(name_of(&["this is about my invoice"]), None);
    }

    #[test]
    fn greetings_and_non_names_fail_the_guard_with_a_reason() {
        for g in [
            "guten Tag",
            "hello",
            "yes speaking",
            "Grüß Gott",
            "haan ji",
            "shalom",
            "Moin",
            "Hallo, ja?",
        ] {
            assert_eq!(
                is_plausible_name(g),
                Err("a greeting or filler, not a name"),
                "{g}"
            );
        }
        assert_eq!(is_plausible_name("Agent 007"), Err("contains digits"));
        assert_eq!(
            is_plausible_name("Müller Sanitär GmbH"),
            Err("looks like a company, not a person")
        );
        assert_eq!(is_plausible_name("Hi John"), Err("starts with a greeting"));
        assert_eq!(
            is_plausible_name("the customer"),
            Err("contains an ordinary word, not a name")
        );
        assert_eq!(
            is_plausible_name("Anna Maria Luise Sophie Schmidt"),
            Err("too long for a name (more than 4 words)")
        );
        assert_eq!(is_plausible_name("Frau"), Err("only a title, no name"));
        assert_eq!(is_plausible_name("Ich"), Err("a pronoun, not a name"));
        assert_eq!(
            is_plausible_name("x@y.de"),
            Err("contains characters a name does not have")
        );
        assert_eq!(is_plausible_name(""), Err("empty"));
        for ok in [
            "Schreiber",
            "Ursula von der Leyen",
            "O'Brien",
            "Müller-Lüdenscheidt",
            "प्रिया",
            "דוד כהן",
            "Koch",
        ] {
            assert_eq!(is_plausible_name(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn llm_names_need_a_real_quote_containing_them() {
        let t = "Agent: Guten Tag. Caller: Ja, hallo, hier ist Frau Schreiber, ich wollte einen Termin.";
        assert_eq!(
            guard_llm_name("Frau Schreiber", "hier ist Frau Schreiber", t),
            Ok("Schreiber".into())
        );
        assert_eq!(
            guard_llm_name("Schreiber", "HIER IST  frau schreiber", t),
            Ok("Schreiber".into())
        );
        assert!(
            guard_llm_name("Anna Schreiber", "hier ist Frau Schreiber", t)
                .unwrap_err()
                .contains("\"anna\"")
        );
        assert!(guard_llm_name("Schreiber", "mein Name ist Schreiber", t)
            .unwrap_err()
            .contains("does not occur"));
        assert!(guard_llm_name("Schreiber", "", t)
            .unwrap_err()
            .contains("no evidence quote"));
        assert!(guard_llm_name("Guten Tag", "Guten Tag", t)
            .unwrap_err()
            .contains("greeting"));
        // The quote must hold whole words: "Schreib" is not in "Schreiber".
        assert!(guard_llm_name("Schreib", "Frau Schreiber", t).is_err());
    }

    #[test]
    fn normalization() {
        assert_eq!(
            normalize_name("  Frau  Dr. MÜLLER-Lüdenscheidt "),
            "müller lüdenscheidt"
        );
        assert_eq!(normalize_name("O’Brien"), "obrien");
        assert_eq!(
            normalize_name("Ursula von der Leyen"),
            "ursula von der leyen"
        );
        assert_eq!(normalize_name("Sharma ji"), "sharma");
        assert_eq!(
            normalize_name("ｍüller"),
            "müller",
            "NFKC folds full-width letters"
        );
        assert_eq!(fold_umlauts("Größe Müßig Äpfel"), "Groesse Muessig Aepfel");
        assert_eq!(
            fold_umlauts("Mu\u{308}ller"),
            "Mueller",
            "decomposed umlauts fold too"
        );
    }

    #[test]
    fn phonetic_folded_and_token_wise_matches() {
        assert_eq!(name_similarity("Müller", "Mueller").score, 1.0);
        let m = name_similarity("Müller", "Miller");
        assert!(m.phonetic_match && m.score >= 0.88, "{m:?}");
        assert_eq!(name_similarity("Schreiber", "Peter Schreiber").score, 1.0);
        assert!(name_similarity("Rahul Sharma", "Sharma Rahul").score > 0.99);
        let first_only = name_similarity("Peter", "Peter Schreiber");
        assert!(
            first_only.score <= 0.8 && first_only.why.contains("first name only"),
            "{first_only:?}"
        );
        assert!(
            name_similarity("Meier", "Mohr").score < 0.85,
            "phonetics alone never links"
        );
        assert_eq!(name_similarity("", "Anna").score, 0.0);
    }

    #[test]
    fn term_frequency_penalty_is_monotonic_and_bounded() {
        assert_eq!(tf_penalty(0.0), 0.0);
        assert_eq!(tf_penalty(f64::NAN), 0.0);
        assert!((tf_penalty(1.0) - TF_MAX_PENALTY).abs() < 1e-12);
        assert!(tf_penalty(0.01) < tf_penalty(0.1));
        assert!(tf_penalty(7.0) <= TF_MAX_PENALTY);
    }

    #[test]
    fn link_needs_threshold_and_margin() {
        let one = rank_candidates(
            "Zwiebelhuber",
            &[(1, "Karl Zwiebelhuber".into(), 0.001)],
            0.85,
            0.7,
        );
        assert!(matches!(
            link_decision(&one, 0.85),
            LinkDecision::Link { customer_id: 1, .. }
        ));
        let two = rank_candidates(
            "Schreiber",
            &[
                (1, "Anna Schreiber".into(), 0.01),
                (2, "Peter Schreiber".into(), 0.01),
            ],
            0.85,
            0.7,
        );
        match link_decision(&two, 0.85) {
            LinkDecision::Review { reason } => {
                assert!(
                    reason.starts_with("name 'Schreiber' matched 2 customers at"),
                    "{reason}"
                );
                assert!(reason.contains("→ review"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            link_decision(&[], 0.85),
            LinkDecision::NoCandidates { .. }
        ));
    }

    /// xorshift64: deterministic, so a failure reproduces.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn random_text_never_panics() {
        // Pieces that exercise every branch: cues, titles, particles, scripts whose case
        // changes byte length when lowercased (İ, ẞ), combining marks, punctuation.
        const PIECES: &[&str] = &[
            "my",
            "name",
            "is",
            "hier",
            "ist",
            "Frau",
            "Dr.",
            "ich",
            "bin",
            "der",
            "main",
            "bol",
            "raha",
            "मेरा",
            "नाम",
            "है",
            "קוראים",
            "לי",
            "אני",
            "Müller",
            "İstanbul",
            "ẞ",
            "u\u{308}",
            "van",
            "de",
            "ji",
            "-ji",
            "Sharma-ji",
            ",",
            ".",
            "?",
            "।",
            "…",
            "—",
            "„",
            "'",
            "’",
            "1",
            "🙂",
            "\u{1b}[2J",
            "am",
            "Apparat",
            "speaking",
            "this",
            "John",
            "hallo",
            " ",
            "\t",
            "\u{200d}",
            "A.",
        ];
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..3_000 {
            let n = (next(&mut x) % 12) as usize;
            let text: String = (0..n)
                .map(|_| PIECES[(next(&mut x) % PIECES.len() as u64) as usize])
                .collect::<Vec<_>>()
                .join(if next(&mut x).is_multiple_of(3) {
                    ""
                } else {
                    " "
                });
            let segs = vec![
                ("a".to_string(), text.clone()),
                ("b".to_string(), text.clone()),
            ];
            let _ = extract_caller_name(&segs, None);
            let _ = extract_caller_name(&segs, Some("b"));
            let _ = is_plausible_name(&text);
            let _ = guard_llm_name(&text, &text, &text);
            let s = name_similarity(&text, "Anna Müller");
            assert!((0.0..=1.0).contains(&s.score), "{text:?}: {s:?}");
            let _ = fold_umlauts(&normalize_name(&text));
        }
        // Arbitrary bytes as well.
        for _ in 0..1_000 {
            let len = (next(&mut x) % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next(&mut x) as u8).collect();
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let _ = extract_caller_name(&[("c".into(), text.clone())], Some("c"));
            let _ = guard_llm_name(&text, &text, &text);
            let _ = rank_candidates(&text, &[(1, text.clone(), f64::NAN)], f64::NAN, 0.0);
        }
    }
}
