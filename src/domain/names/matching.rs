//! Matching a said name against customers: every piece of evidence counts, and some can
//! veto an automatic link.
//!
//! Per candidate customer the score combines:
//! - **surname**: the same word after folding (Müller/Mueller/Muller, Groß/Gross) or
//!   transliteration (शर्मा/Sharma, כהן/Cohen), else Jaro-Winkler on folded forms with
//!   Cologne phonetics (Splink's levels: exact, ≥ 0.92, ≥ 0.88, ≥ 0.70);
//! - **first name**: must be the *same* name to link (Peter/Petra, Andreas/Andrea,
//!   Sunil/Sunita are different people: Jaro-Winkler above 0.9 proves nothing here);
//! - **gender**: a title (Frau, Mrs, Smt, גברת) or first name that disagrees with the
//!   customer's first name vetoes;
//! - **cue**: how the name was said; a surname alone, a low-confidence cue ("it's …", a
//!   bare word), a model's claim, a name the agent said or a third party's never links;
//! - **surname frequency**: on folded keys, a common surname proves less (Fellegi–Sunter
//!   u-probability);
//! - **spoken phone number**: the customer's number said aloud is strong evidence;
//! - **direction**: an outbound call is linked by the number dialled, not by a name;
//! - **history**: earlier calls of the customer break ties between equals.
//!
//! A link needs no veto, the threshold, and a margin over the runner-up; the reason states
//! every component and the margin.

use super::fold::{fold_digraphs, fold_key, skeleton_keys, spelling, Spelling};
use super::lexicon::{FEMALE_TITLES, MALE_TITLES};
use super::normalize_name;
use super::text::{script_of, Script};
use rphonetic::{Cologne, Encoder};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NameScore {
    /// 0..1 after exact/phonetic adjustments: what ranking uses.
    pub score: f64,
    /// The raw Jaro-Winkler of the compared tokens (best of plain and folded).
    pub jaro_winkler: f64,
    /// The surnames share a Cologne phonetic code.
    pub phonetic_match: bool,
    pub why: String,
}

/// A phonetic match alone lifts a pair to this score: enough to be shown for review,
/// not enough to link (Cologne codes are coarse: Meier, Mayer and Mohr all encode to 67).
const PHONETIC_FLOOR: f64 = 0.80;
/// A single spoken word matching only a customer's first name is weak evidence.
const FIRST_NAME_ONLY_FACTOR: f64 = 0.8;
/// Full-name weights: the surname carries most of the identity.
const SURNAME_WEIGHT: f64 = 0.6;
/// The customer's first name is unknown while the caller gave one.
const UNKNOWN_FIRST_FACTOR: f64 = 0.85;
/// A gender disagreement (also vetoes).
const GENDER_FACTOR: f64 = 0.8;
/// Cues below this confidence never link on their own.
pub const AUTO_LINK_MIN_CUE: f64 = 0.75;
/// The best candidate must beat the second by this much to be linked without a person.
pub const LINK_MARGIN: f64 = 0.05;

/// How two name tokens compare.
#[derive(Debug, Clone, Copy)]
struct TokenSim {
    jw: f64,
    phonetic: bool,
    spelling: Spelling,
}

impl TokenSim {
    fn score(self) -> f64 {
        match self.spelling {
            Spelling::Same => 1.0,
            Spelling::Digraph => 0.97,
            Spelling::CrossScript => 0.95,
            Spelling::Different if self.phonetic => self.jw.max(PHONETIC_FLOOR),
            Spelling::Different => self.jw,
        }
    }
    /// The same word (in any spelling or script): enough to link on.
    fn same(self) -> bool {
        self.spelling != Spelling::Different
    }
}

fn token_sim(a: &str, b: &str) -> TokenSim {
    let sp = spelling(a, b);
    let (fa, fb) = (fold_key(a), fold_key(b));
    let (da, db) = (fold_digraphs(&fa), fold_digraphs(&fb));
    let jw = strsim::jaro_winkler(&fa, &fb).max(strsim::jaro_winkler(&da, &db));
    let latin = script_of(a) == Some(Script::Latin) && script_of(b) == Some(Script::Latin);
    let (ca, cb) = (Cologne.encode(&da), Cologne.encode(&db));
    // Cologne ignores non-Latin letters; a one-digit code says too little to count.
    let phonetic = latin && ca.len() >= 2 && ca == cb;
    let jw = if sp == Spelling::CrossScript {
        0.95
    } else {
        jw
    };
    TokenSim {
        jw,
        phonetic,
        spelling: sp,
    }
}

/// Splink's default Jaro-Winkler levels, named for the trace.
fn level(t: TokenSim) -> &'static str {
    match t.spelling {
        Spelling::Same => "exact",
        Spelling::Digraph => "same after folding",
        Spelling::CrossScript => "same across scripts",
        Spelling::Different if t.jw >= 0.92 => "jw≥0.92",
        Spelling::Different if t.jw >= 0.88 => "jw≥0.88",
        Spelling::Different if t.phonetic => "phonetic",
        Spelling::Different if t.jw >= 0.70 => "jw≥0.70",
        Spelling::Different => "below 0.70",
    }
}

/// Similarity of an extracted name to a customer's name, 0..1, on names alone (no veto,
/// no context): a surname alone is compared with the customer's surname; full names
/// token by token (also in swapped order, as Indian names are often said surname first).
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
    if ta.len() == tb.len()
        && ta
            .iter()
            .zip(&tb)
            .all(|(x, y)| spelling(x, y) == Spelling::Same)
    {
        return NameScore {
            score: 1.0,
            jaro_winkler: 1.0,
            phonetic_match: token_sim(a_last, b_last).phonetic,
            why: "exact".into(),
        };
    }
    let mut options: Vec<(f64, f64, bool, String)> = Vec::new();
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
            options.push((score, jw, sur.phonetic, format!("{} ({note})", level(sur))));
        }
    } else {
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
        options.push((
            sur.score(),
            sur.jw,
            sur.phonetic,
            format!("{} ({note})", level(sur)),
        ));
        if other.len() > 1 {
            let first = token_sim(single, other[0]);
            options.push((
                first.score() * FIRST_NAME_ONLY_FACTOR,
                first.jw,
                false,
                format!("{} (first name only)", level(first)),
            ));
        }
    }
    let (score, jw, phonetic, note) = options
        .into_iter()
        .max_by(|x, y| x.0.total_cmp(&y.0))
        .unwrap_or((0.0, 0.0, false, "no comparison".into()));
    NameScore {
        score,
        jaro_winkler: jw,
        phonetic_match: phonetic,
        why: format!(
            "{note}: jaro-winkler {jw:.2}{}",
            if phonetic { ", phonetic match" } else { "" }
        ),
    }
}

/// Where a name to match came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum QuerySource {
    /// The caller said it of themselves.
    #[default]
    Caller,
    /// The caller named someone they speak for or about.
    ThirdParty,
    /// The agent addressed the caller with it.
    Addressed,
    /// A language model claimed it (with a quote that passed the guard).
    Model,
}

/// A name to match, with what is known about how it was said.
#[derive(Debug, Clone, PartialEq)]
pub struct NameQuery {
    pub name: String,
    pub title: Option<String>,
    pub cue: String,
    pub cue_confidence: f64,
    pub source: QuerySource,
}

impl NameQuery {
    /// A name the caller said with an explicit cue ("my name is").
    pub fn explicit(name: &str) -> Self {
        NameQuery {
            name: name.into(),
            title: None,
            cue: "my name is".into(),
            cue_confidence: 0.95,
            source: QuerySource::Caller,
        }
    }
}

/// A customer to compare with.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CandidateCustomer {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
    /// Share of the business's customers with this surname (folded key), 0..1.
    pub surname_share: f64,
    /// Earlier calls linked to this customer.
    pub prior_calls: i64,
}

/// Evidence about the call itself.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LinkEvidence {
    /// Numbers the caller said aloud, normalized (E.164).
    pub spoken_phones: Vec<String>,
    /// "inbound" or "outbound".
    pub direction: String,
    /// Customers who hold a number the caller said.
    pub spoken_owners: Vec<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedCandidate {
    pub customer_id: i64,
    /// The customer's name as stored.
    pub name: String,
    /// The name as extracted from the call.
    #[serde(default)]
    pub extracted: String,
    /// Name similarity before frequency weighting.
    pub score: f64,
    /// Similarity after all evidence: what link decisions use.
    pub confidence: f64,
    /// Every component, for the trace and the review screen.
    pub why: String,
    /// Why this candidate may not be linked without a person (empty: it may).
    #[serde(default)]
    pub vetoes: Vec<String>,
    /// Where the name came from (caller, third_party, addressed, model).
    #[serde(default)]
    pub source: QuerySource,
    /// Tie-breaks between equal confidences: agreement strength, then history.
    #[serde(default)]
    pub agreement: i64,
    #[serde(default)]
    pub prior_calls: i64,
    /// The surname is the same word (any spelling or script).
    #[serde(default)]
    pub surname_same: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Gender {
    Female,
    Male,
}

fn gender_of_title(title: Option<&str>) -> Option<Gender> {
    let t = title?;
    for w in normalize_title_words(t) {
        if FEMALE_TITLES.contains(&w.as_str()) {
            return Some(Gender::Female);
        }
        if MALE_TITLES.contains(&w.as_str()) {
            return Some(Gender::Male);
        }
    }
    None
}

fn normalize_title_words(t: &str) -> Vec<String> {
    super::text::flatten(t)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn gender_of_first(first: &str) -> Option<Gender> {
    let k = fold_key(first);
    let (female, male) = super::first_names::folded();
    let f = female.contains(&k);
    let m = male.contains(&k);
    match (f, m) {
        (true, false) => Some(Gender::Female),
        (false, true) => Some(Gender::Male),
        _ if script_of(first) != Some(Script::Latin) => {
            match super::first_names::cross_script(first) {
                (true, false) => Some(Gender::Female),
                (false, true) => Some(Gender::Male),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Titles at the front of a stored customer name ("Frau Anna Weber").
fn stored_title(name: &str) -> Option<String> {
    let first = super::text::flatten(name);
    let w = first.split_whitespace().next()?;
    (FEMALE_TITLES.contains(&w) || MALE_TITLES.contains(&w)).then(|| w.to_string())
}

/// The folded key a surname's frequency is counted on: all spellings of one surname
/// share it (Müller, Mueller, Muller → "muller").
pub fn surname_key(name: &str) -> Option<String> {
    let n = normalize_name(name);
    let last = n.split_whitespace().last()?;
    let k = fold_digraphs(&fold_key(last));
    if script_of(last) == Some(Script::Latin) || k.is_empty() {
        Some(k)
    } else {
        // Other scripts count on their consonant skeleton, so शर्मा and Sharma add up.
        skeleton_keys(last).into_iter().next().or(Some(k))
    }
}

/// Index keys of a name (for finding candidates without reading every customer): per
/// word its folded spelling ("f:"), Cologne code ("p:"), and consonant skeletons ("x:"),
/// with the word's position ("l" last/single, "f" first); "n1" marks a one-word name.
/// Plus the name's compound keys ([`compound_keys`]): a full-name lookup reads one short
/// posting list instead of intersecting a common surname's with a common first name's.
pub fn name_keys(name: &str) -> Vec<String> {
    let n = normalize_name(name);
    let toks: Vec<&str> = n.split_whitespace().collect();
    let mut keys = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        let pos = if i + 1 == toks.len() {
            "l"
        } else if i == 0 {
            "f"
        } else {
            continue;
        };
        keys.extend(word_keys(t).into_iter().map(|k| format!("{pos}{k}")));
    }
    if let Some(last) = toks.last() {
        let sur = word_keys(last);
        let first = if toks.len() >= 2 {
            word_keys(toks[0])
        } else {
            vec![COMPOUND_ONE_WORD.to_string()]
        };
        keys.extend(compound_keys(&sur, &first));
    }
    if toks.len() == 1 {
        keys.push("n1".into());
    }
    keys.sort();
    keys.dedup();
    keys
}

/// The first-name side of a one-word name's compound keys (its surname with no first name).
pub const COMPOUND_ONE_WORD: &str = "n1";
/// A name with more (surname key × first-name key) combinations than this stores one
/// overflow key per surname key instead ([`compound_overflow_key`]); a lookup drives from
/// that short list and probes the first-name keys, so such names are still found.
pub const COMPOUND_MAX: usize = 64;

/// The compound key of one surname key and one first-name key (word keys as
/// [`word_keys`] gives them, or [`COMPOUND_ONE_WORD`]): "cf:muller+f:anna".
pub fn compound_key(sur: &str, first: &str) -> String {
    format!("c{sur}+{first}")
}

/// The key a name with too many combinations stores per surname key: "cf:cohen+*".
pub fn compound_overflow_key(sur: &str) -> String {
    format!("c{sur}+*")
}

/// Compound keys of a (surname, first name): every combination of their word keys, so a
/// query shares one exactly when it shares a surname key AND a first-name key (the same
/// candidates as intersecting the two, read from one posting list). Above
/// [`COMPOUND_MAX`] combinations, the overflow keys of the surname keys instead.
/// Migration 0014 builds the same keys in SQL from the stored per-word keys.
pub fn compound_keys(sur: &[String], first: &[String]) -> Vec<String> {
    if sur.is_empty() || first.is_empty() {
        return vec![];
    }
    if sur.len() * first.len() > COMPOUND_MAX {
        return sur.iter().map(|s| compound_overflow_key(s)).collect();
    }
    sur.iter()
        .flat_map(|s| first.iter().map(move |f| compound_key(s, f)))
        .collect()
}

/// Keys of one word: "f:<folded>", "p:<cologne>", "x:<skeleton>".
pub fn word_keys(word: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let folded = fold_digraphs(&fold_key(word));
    if folded.is_empty() {
        return keys;
    }
    if script_of(word) == Some(Script::Latin) {
        keys.push(format!("f:{folded}"));
        let c = Cologne.encode(&folded);
        if c.len() >= 2 {
            keys.push(format!("p:{c}"));
        }
    } else {
        keys.push(format!("f:{folded}"));
    }
    keys.extend(skeleton_keys(word).into_iter().map(|k| format!("x:{k}")));
    keys
}

/// Surnames at or below this share of customers count fully.
const TF_RARE_SHARE: f64 = 0.001;
/// A surname every customer has loses this much confidence.
const TF_MAX_PENALTY: f64 = 0.15;

/// Term-frequency penalty for a surname held by `share` (0..1) of customers: evidence
/// falls with log(share), from 0 at the rare reference share up to [`TF_MAX_PENALTY`].
pub(crate) fn tf_penalty(share: f64) -> f64 {
    let share = share01(share);
    if share <= TF_RARE_SHARE {
        return 0.0;
    }
    (TF_MAX_PENALTY * (share / TF_RARE_SHARE).ln() / (1.0 / TF_RARE_SHARE).ln())
        .clamp(0.0, TF_MAX_PENALTY)
}

fn share01(share: f64) -> f64 {
    if share.is_finite() {
        share.clamp(0.0, 1.0)
    } else {
        0.0
    }
}

/// Score one customer against a query.
/// What is known about the query once, for every candidate.
struct QueryFacts {
    gender: Option<(Gender, String)>,
    /// The query's normalized words.
    tokens: Vec<String>,
    /// Per query word, how it compares with each customer word met so far: candidates
    /// share few distinct words (a few dozen first names, a few hundred surnames) across
    /// thousands of distinct full names.
    sims: std::cell::RefCell<Vec<std::collections::HashMap<String, TokenSim>>>,
}

impl QueryFacts {
    fn of(q: &NameQuery) -> Self {
        let qn = normalize_name(&q.name);
        let qt: Vec<&str> = qn.split_whitespace().collect();
        let gender = gender_of_title(q.title.as_deref())
            .map(|g| (g, format!("title {}", q.title.as_deref().unwrap_or(""))))
            .or_else(|| {
                (qt.len() >= 2)
                    .then(|| gender_of_first(qt[0]).map(|g| (g, format!("first name {}", qt[0]))))
                    .flatten()
            });
        QueryFacts {
            gender,
            tokens: qt.iter().map(|t| t.to_string()).collect(),
            sims: std::cell::RefCell::new(vec![Default::default(); qt.len()]),
        }
    }

    /// `token_sim` of query word `i` and `word`, remembered.
    fn sim(&self, i: usize, word: &str) -> TokenSim {
        let mut sims = self.sims.borrow_mut();
        if let Some(t) = sims[i].get(word) {
            return *t;
        }
        let t = token_sim(&self.tokens[i], word);
        sims[i].insert(word.to_string(), t);
        t
    }
}

/// What a customer's stored name alone says about the query (the same for every customer
/// with that name: computed once per distinct name, see [`rank_customers`]).
#[derive(Clone)]
struct NameFacts {
    score: f64,
    sur_same: bool,
    /// After the gender evidence.
    confidence: f64,
    agreement: i64,
    parts: Vec<String>,
    vetoes: Vec<String>,
}

fn name_facts(c_name: &str, facts: &QueryFacts) -> NameFacts {
    let cn = normalize_name(c_name);
    let qt: Vec<&str> = facts.tokens.iter().map(String::as_str).collect();
    let last = qt.len().saturating_sub(1);
    let ct: Vec<&str> = cn.split_whitespace().collect();
    let mut vetoes: Vec<String> = Vec::new();
    let mut parts: Vec<String> = Vec::new();
    let mut agreement = 0;
    let (score, sur_same) = if qt.is_empty() || ct.is_empty() {
        (0.0, false)
    } else if qt.len() >= 2 && ct.len() >= 2 {
        // Both full names: surname and first name, straight or swapped.
        let straight = (facts.sim(last, ct[ct.len() - 1]), facts.sim(0, ct[0]));
        let swapped = (facts.sim(0, ct[ct.len() - 1]), facts.sim(last, ct[0]));
        let val = |(s, f): (TokenSim, TokenSim)| {
            // A different first name counts little, but a near one ranks above a far one.
            SURNAME_WEIGHT * s.score()
                + (1.0 - SURNAME_WEIGHT) * if f.same() { f.score() } else { f.jw * 0.5 }
        };
        let (sur, first, order) = if val(swapped) > val(straight) + 1e-9 {
            (swapped.0, swapped.1, ", swapped order")
        } else {
            (straight.0, straight.1, "")
        };
        parts.push(format!("surname {} {:.2}{order}", level(sur), sur.score()));
        let (qf, cf) = if order.is_empty() {
            (qt[0], ct[0])
        } else {
            (qt[qt.len() - 1], ct[0])
        };
        let initial = (qf.chars().count() == 1 || cf.chars().count() == 1)
            && fold_key(qf).chars().next() == fold_key(cf).chars().next();
        if first.same() {
            parts.push(format!("first name {}", level(first)));
            agreement += 2;
        } else if initial {
            parts.push("first name: only an initial agrees".into());
            vetoes.push("only an initial of the first name agrees".into());
        } else {
            parts.push(format!(
                "first name differs ('{qf}' ≠ '{cf}', jw {:.2})",
                first.jw
            ));
            vetoes.push(format!("different first name ('{qf}' ≠ '{cf}')"));
        }
        if sur.same() {
            agreement += 1;
        }
        let s = if first.same() {
            val((sur, first))
        } else if initial {
            SURNAME_WEIGHT * sur.score() + (1.0 - SURNAME_WEIGHT) * 0.7
        } else {
            val((sur, first))
        };
        (s, sur.same())
    } else if qt.len() >= 2 {
        // The caller gave a full name; the customer has one word (a surname, usually).
        let sur = facts.sim(last, ct[0]);
        parts.push(format!(
            "surname {} {:.2}; customer's first name unknown",
            level(sur),
            sur.score()
        ));
        vetoes.push("the customer's first name is unknown".into());
        (sur.score() * UNKNOWN_FIRST_FACTOR, sur.same())
    } else {
        // One word said: the surname, or (weakly) a first name.
        let sur = facts.sim(0, ct[ct.len() - 1]);
        let first = (ct.len() > 1).then(|| facts.sim(0, ct[0]));
        match first {
            Some(f) if f.score() * FIRST_NAME_ONLY_FACTOR > sur.score() => {
                parts.push(format!("first name only, {} {:.2}", level(f), f.score()));
                vetoes.push("only a first name was said".into());
                (f.score() * FIRST_NAME_ONLY_FACTOR, false)
            }
            _ => {
                parts.push(format!("surname {} {:.2}", level(sur), sur.score()));
                vetoes.push("surname only (no first name said)".into());
                (sur.score(), sur.same())
            }
        }
    };
    if !sur_same && score > 0.0 && !vetoes.iter().any(|v| v.starts_with("only a first name")) {
        vetoes.push("the surname is only similar, not the same".into());
    }
    let mut confidence = score;
    // Gender by title or first name, against the customer's first name or stored title.
    let q_gender = facts.gender.clone();
    let c_gender = gender_of_title(stored_title(c_name).as_deref())
        .or_else(|| (ct.len() >= 2).then(|| gender_of_first(ct[0])).flatten());
    match (q_gender, c_gender) {
        (Some((g, why)), Some(cg)) if g != cg => {
            parts.push(format!("gender: {why} vs customer {cg:?}").to_lowercase());
            vetoes
                .push(format!("different gender ({why} vs the customer's {cg:?})").to_lowercase());
            confidence *= GENDER_FACTOR;
        }
        (Some((g, _)), Some(_)) => {
            parts.push(format!("gender agrees ({g:?})").to_lowercase());
            agreement += 1;
        }
        _ => {}
    }
    NameFacts {
        score,
        sur_same,
        confidence,
        agreement,
        parts,
        vetoes,
    }
}

/// Did the caller say this customer's number; does a number the caller said belong to
/// this customer.
fn spoken_evidence(c: &CandidateCustomer, ev: &LinkEvidence) -> (bool, bool) {
    let said = c
        .phone
        .as_deref()
        .is_some_and(|p| ev.spoken_phones.iter().any(|s| s == p));
    (said, ev.spoken_owners.contains(&c.id))
}

/// The customer's own evidence (surname frequency, spoken number, history) and the
/// query's (cue, source, direction) on top of what the name said.
fn finish_score(
    q: &NameQuery,
    c: &CandidateCustomer,
    ev: &LinkEvidence,
    named: NameFacts,
) -> RankedCandidate {
    let NameFacts {
        score,
        sur_same,
        mut confidence,
        mut agreement,
        mut parts,
        mut vetoes,
    } = named;
    // Surname frequency.
    let penalty = tf_penalty(c.surname_share);
    confidence *= 1.0 - penalty;
    parts.push(format!(
        "surname share {:.1}% → −{:.0}%",
        share01(c.surname_share) * 100.0,
        penalty * 100.0
    ));
    // Spoken phone number.
    let (phone_match, owner) = spoken_evidence(c, ev);
    if phone_match {
        parts.push("the caller said this customer's number".into());
        confidence = (confidence + 0.15).min(1.0);
        agreement += 3;
        vetoes.retain(|v| {
            !(v.starts_with("surname only")
                || v.starts_with("the customer's first name")
                || v.starts_with("only a first name"))
        });
    } else if !ev.spoken_owners.is_empty() && !owner {
        parts.push("the number the caller said is another customer's".into());
        vetoes.push("the number the caller said belongs to another customer".into());
    } else if !ev.spoken_phones.is_empty() {
        parts.push("the number the caller said is not this customer's".into());
    }
    // How the name was said.
    parts.push(format!("cue '{}' {:.2}", q.cue, q.cue_confidence));
    if q.cue_confidence < AUTO_LINK_MIN_CUE && !phone_match {
        vetoes.push(format!(
            "cue '{}' is weak ({:.2} < {AUTO_LINK_MIN_CUE:.2})",
            q.cue, q.cue_confidence
        ));
    }
    match q.source {
        QuerySource::Caller => {}
        QuerySource::ThirdParty => vetoes.push("a third party's name, not the caller's".into()),
        QuerySource::Addressed => vetoes.push("a name the agent said, not the caller".into()),
        QuerySource::Model => vetoes.push("a model's claim the rules did not confirm".into()),
    }
    if ev.direction == "outbound" {
        vetoes.push("outbound call: linked by the number dialled, never by a name".into());
    }
    if c.prior_calls > 0 {
        parts.push(format!("{} earlier call(s)", c.prior_calls));
    }
    let confidence = if confidence.is_finite() {
        confidence.clamp(0.0, 1.0)
    } else {
        0.0
    };
    RankedCandidate {
        customer_id: c.id,
        name: c.name.clone(),
        extracted: q.name.clone(),
        score: if score.is_finite() {
            score.clamp(0.0, 1.0)
        } else {
            0.0
        },
        confidence,
        why: parts.join("; "),
        vetoes,
        source: q.source,
        agreement,
        prior_calls: c.prior_calls,
        surname_same: sur_same,
    }
}

/// Best first: confidence, fewer vetoes, more agreement, more earlier calls, lower id.
pub fn rank_order(a: &RankedCandidate, b: &RankedCandidate) -> std::cmp::Ordering {
    b.confidence
        .total_cmp(&a.confidence)
        .then(a.vetoes.len().cmp(&b.vetoes.len()))
        .then(b.agreement.cmp(&a.agreement))
        .then(b.prior_calls.cmp(&a.prior_calls))
        .then(a.customer_id.cmp(&b.customer_id))
}

/// Rank customers for a query with all the call's evidence, best first; those below
/// `review_floor` are dropped (a spoken-number match is always kept).
pub fn rank_customers(
    q: &NameQuery,
    customers: &[CandidateCustomer],
    ev: &LinkEvidence,
    review_floor: f64,
) -> Vec<RankedCandidate> {
    let facts = QueryFacts::of(q);
    // Large candidate sets are large because many customers share a name: what the name
    // says is worked out once per distinct name, and the whole score once per distinct
    // name and customer evidence (only the id differs between namesakes).
    let mut by_name: std::collections::HashMap<&str, NameFacts> = std::collections::HashMap::new();
    let mut scored: std::collections::HashMap<(&str, u64, i64, u8), RankedCandidate> =
        std::collections::HashMap::new();
    let mut out: Vec<RankedCandidate> = customers
        .iter()
        .map(|c| {
            let (phone_said, owner) = spoken_evidence(c, ev);
            // Everything finish_score reads from the customer besides the name.
            let evidence = u8::from(phone_said) | u8::from(owner) << 1;
            let key = (
                c.name.as_str(),
                c.surname_share.to_bits(),
                c.prior_calls,
                evidence,
            );
            let mut r = scored
                .entry(key)
                .or_insert_with(|| {
                    let named = by_name
                        .entry(c.name.as_str())
                        .or_insert_with(|| name_facts(&c.name, &facts))
                        .clone();
                    finish_score(q, c, ev, named)
                })
                .clone();
            r.customer_id = c.id;
            r
        })
        // Above the floor, or the same surname (a Petra for a Peter is worth a look), or
        // the customer whose number the caller said.
        .filter(|c| {
            c.confidence > 0.0
                && (c.confidence >= review_floor
                    || (c.surname_same && c.score >= 0.5)
                    || c.agreement >= 3)
        })
        .collect();
    out.sort_by(rank_order);
    out
}

/// Rank candidates `(customer id, name, surname share 0..1)` for a name said with an
/// explicit cue and no other evidence, best first; those below `review_floor` dropped.
pub fn rank_candidates(
    extracted: &str,
    candidates: &[(i64, String, f64)],
    link_threshold: f64,
    review_floor: f64,
) -> Vec<RankedCandidate> {
    let customers: Vec<CandidateCustomer> = candidates
        .iter()
        .map(|(id, name, share)| CandidateCustomer {
            id: *id,
            name: name.clone(),
            surname_share: *share,
            ..Default::default()
        })
        .collect();
    let mut out = rank_customers(
        &NameQuery::explicit(extracted),
        &customers,
        &LinkEvidence::default(),
        review_floor,
    );
    for c in &mut out {
        if c.confidence >= link_threshold {
            c.why.push_str(", clears link threshold");
        }
    }
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

/// Link only when the best candidate has no veto, is at or above `link_threshold`, and is
/// clearly ahead of the second ([`LINK_MARGIN`]); otherwise review, or no candidates.
pub fn link_decision(ranked: &[RankedCandidate], link_threshold: f64) -> LinkDecision {
    let Some(best) = ranked.first() else {
        return LinkDecision::NoCandidates {
            reason: "no customer's name is close enough to review".into(),
        };
    };
    let who = format!("name '{}'", best.extracted);
    let second = ranked.get(1);
    let margin = second.map(|s| best.confidence - s.confidence);
    let runner = second.map_or(String::from("no runner-up"), |s| {
        format!(
            "margin {:.2} over #{} '{}' at {:.2}",
            best.confidence - s.confidence,
            s.customer_id,
            s.name,
            s.confidence
        )
    });
    // A hair of tolerance so 0.95 vs 0.90 counts as the 0.05 it is meant to be.
    let clear = margin.is_none_or(|m| m >= LINK_MARGIN - 1e-9);
    let ok = best.vetoes.is_empty() && best.confidence >= link_threshold && clear;
    if ok {
        return LinkDecision::Link {
            customer_id: best.customer_id,
            confidence: best.confidence,
            reason: format!(
                "{who} matched customer #{} '{}' at {:.2} ({}); {runner}",
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
    let mut because = Vec::new();
    if best.confidence < link_threshold {
        because.push(format!(
            "best '{}' below link threshold {link_threshold:.2}",
            best.name
        ));
    }
    if !clear {
        because.push(format!("top two within {LINK_MARGIN:.2}"));
    }
    if !best.vetoes.is_empty() {
        because.push(format!(
            "best '{}' vetoed: {}",
            best.name,
            best.vetoes.join(", ")
        ));
    }
    LinkDecision::Review {
        reason: format!(
            "{who} matched {} customer{plural} at {} → review ({}); best #{} '{}': {}; {runner}",
            ranked.len(),
            scores.join("/"),
            because.join("; "),
            best.customer_id,
            best.name,
            best.why
        ),
    }
}
