//! Whose words are they? Only the caller's own words are evidence of the caller's name.
//!
//! - Speakers: with a known caller label only that speaker counts. Otherwise the agent is
//!   recognised by what agents say: the business's greeting ("Bristol Plumbing, Sarah
//!   speaking", "Praxis Dr. Weber, guten Tag"), service phrases ("how can I help"), a
//!   question for the caller's name, a question that addresses someone by name ("Hello,
//!   Mrs Davies?"). With diarization the speaker who says these is the agent for the whole
//!   call; without it only those segments are dropped.
//! - Names the agent addressed (and the "Yes?" that answered) are candidates for review,
//!   never the caller's own statement.
//! - Third parties: possessives ("Mrs Wilson's daughter"), kinship and role words ("die
//!   Tochter von Frau Schulz", "Sharma ji ka beta", "הבת של דוד כהן"), calls on someone's
//!   behalf ("on behalf of", "im Auftrag von", "ki taraf se", "בשם"): the named person is a
//!   candidate for review, never the caller's name.

use super::extract::{
    bare_name, cue_candidates, guarded, is_name_token, make_candidate, matches_at, possessive_stem,
    read_name_backward, read_name_forward, title_text, NameCandidate, Read, ANSWER_CONFIDENCE,
    LEAD_CUES,
};
use super::guard::NameContext;
use super::lexicon::*;
use super::spelled::collapse_spelling;
use super::text::{flatten, sentence_text, sentences, tokenize, PhraseSet, Tok};
use serde::{Deserialize, Serialize};

/// Someone the caller speaks for or about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThirdParty {
    /// The named person, when a name was said (guarded like any name).
    pub name: Option<NameCandidate>,
    /// How the caller relates to them ("possessive 's", "daughter of", "on behalf of", …).
    pub relation: String,
    pub evidence: String,
}

/// Everything the transcript says about who called.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CallerEvidence {
    /// The caller's own name, as they said it.
    pub name: Option<NameCandidate>,
    /// People the caller speaks for or about: such a call is never linked without a person.
    pub third_parties: Vec<ThirdParty>,
    /// Names the agent addressed the caller with ("Hello, Mrs Davies?"): review only.
    pub addressed: Vec<NameCandidate>,
    /// Names the rules read but the guard refused: (name, why).
    pub rejected: Vec<(String, String)>,
    /// How the caller's speech was told apart from the agent's, for the trace.
    pub attribution: String,
    /// The caller's utterances (for spoken numbers).
    pub caller_texts: Vec<String>,
}

static SERVICE_PHRASES: std::sync::LazyLock<PhraseSet> =
    std::sync::LazyLock::new(|| PhraseSet::new(AGENT_SERVICE_PHRASES));
static ASKS_NAME: std::sync::LazyLock<PhraseSet> =
    std::sync::LazyLock::new(|| PhraseSet::new(NAME_QUESTIONS));

/// Why a segment is the agent's (None: nothing agent-like in it).
fn agent_signal(text: &str, toks: &[Tok], ctx: &NameContext) -> Option<&'static str> {
    let flat = flatten(text);
    if SERVICE_PHRASES.any_in(&flat) {
        return Some("service phrase");
    }
    if ASKS_NAME.any_in(&flat) && text.contains('?') {
        return Some("asks for the caller's name");
    }
    if mentions_business(toks, ctx) {
        return Some("names the business");
    }
    if business_opener(toks) {
        return Some("answers with a business name");
    }
    if self_intro_with_employer(toks) {
        return Some("introduces themselves with the employer");
    }
    if !addressed_names(toks).is_empty() {
        return Some("addresses someone by name in a question");
    }
    if agent_self_intro(toks, ctx) {
        return Some("an agent's name");
    }
    None
}

/// The business's own name said in a statement (not "is that Bristol Plumbing?").
fn mentions_business(toks: &[Tok], ctx: &NameContext) -> bool {
    let biz: Vec<String> = ctx
        .business_tokens()
        .into_iter()
        .filter(|t| !COMPANY_WORDS.contains(&t.as_str()) || t.len() > 3)
        .collect();
    if biz.is_empty() {
        return false;
    }
    let folded: Vec<String> = toks
        .iter()
        .map(|t| super::fold::fold_key(&t.word))
        .collect();
    for range in sentences(toks) {
        let s = &folded[range.clone()];
        let hit = s.windows(biz.len()).any(|w| w == biz.as_slice())
            || (biz.len() > 1 && s.windows(biz.len() - 1).any(|w| w == &biz[..biz.len() - 1]));
        let question = toks[range.end - 1].question();
        if hit && !question {
            return true;
        }
    }
    false
}

/// "Praxis Dr. Weber, guten Tag", "Firma Müller Sanitär", "Zahnarztpraxis Hamburg, …",
/// "Bristol Plumbing, Sarah speaking": one of the first two clauses is a business's name
/// (capitalized words, titles and at least one business word, not a question).
fn business_opener(toks: &[Tok]) -> bool {
    let biz = |t: &Tok| COMPANY_WORDS.contains(&t.lower.as_str()) || is_business_compound(&t.lower);
    let mut start = 0;
    for _ in 0..2 {
        if start >= toks.len() {
            break;
        }
        let end = toks[start..]
            .iter()
            .position(|t| t.punct_after)
            .map_or(toks.len(), |p| start + p + 1);
        let clause = &toks[start..end];
        let name_like = clause.len() <= 5
            && clause.iter().all(|t| {
                is_title(&t.lower)
                    || biz(t)
                    || matches!(t.lower.as_str(), "and" | "und" | "&")
                    || t.word
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_uppercase() || !super::text::is_cased(c))
            });
        let question = clause.last().is_some_and(|t| t.question());
        if name_like && !question && clause.iter().any(biz) {
            return true;
        }
        start = end;
    }
    false
}

/// "this is Sarah from ACME", "mein Name ist Lena von der Firma …", "Asha baat kar rahi
/// hoon Sharma Motors se".
fn self_intro_with_employer(toks: &[Tok]) -> bool {
    (0..toks.len()).any(|at| {
        LEAD_CUES.iter().any(|c| {
            matches_at(toks, at, c.words)
                && read_name_forward(toks, at + c.words.len(), false)
                    .and_then(|f| toks.get(f.end))
                    .is_some_and(|t| AGENT_EMPLOYER_WORDS.contains(&t.lower.as_str()))
        })
    }) || toks.first().is_some_and(|t| t.lower == "firma")
}

fn agent_self_intro(toks: &[Tok], ctx: &NameContext) -> bool {
    if ctx.agent_names.is_empty() {
        return false;
    }
    cue_candidates(toks)
        .iter()
        .any(|r| guarded(&r.candidate, ctx) == Err("the agent's name, not the caller's"))
}

/// Names addressed in a question ("Hello, Mrs Davies?", "Spreche ich mit Herrn Weber?",
/// "Am I speaking with Mr Patel?").
pub(crate) fn addressed_names(toks: &[Tok]) -> Vec<Read> {
    let mut out = Vec::new();
    for range in sentences(toks) {
        if !toks[range.end - 1].question() {
            continue;
        }
        let mut at = range.start;
        while at < range.end {
            let t = &toks[at];
            let mut found = None;
            if is_title(&t.lower) && t.lower != "sir" && t.lower != "madam" {
                found = read_name_forward(toks, at, false);
            } else if let Some(cue) = ADDRESS_CUES.iter().find(|c| matches_at(toks, at, c)) {
                let k = at + cue.len();
                found = read_name_forward(toks, k, false).filter(|f| {
                    f.end <= range.end
                        && (f.titles.len() + f.name.len() >= 2 || !f.titles.is_empty())
                });
            }
            if let Some(f) = found.filter(|f| f.end <= range.end && !f.possessive) {
                let c = make_candidate(&f, "agent addressed the caller".into(), toks, 0.5);
                let end = f.end;
                out.push(Read {
                    candidate: c,
                    span: f.start..f.end,
                    possessive: false,
                });
                at = end.max(at + 1);
                continue;
            }
            at += 1;
        }
    }
    out
}

struct Hit {
    /// The construction says "someone else" even without a name ("my mother", "on behalf
    /// of"); a weak one ("calling for …", "für Herrn …") only with a real name.
    strong: bool,
    relation: String,
    name: Option<super::extract::Found>,
    span: std::ops::Range<usize>,
}

const STRONG_BEHALF: &[&str] = &[
    "on behalf of",
    "im auftrag von",
    "im namen von",
    "in vertretung von",
    "בשם",
    "מטעם",
    "beshem",
    "ki taraf se",
    "ki or se",
    "की तरफ़ से",
    "की तरफ से",
    "की ओर से",
    "ke behalf pe",
    "ke behalf par",
];

fn is_kin(t: &Tok, prev: Option<&Tok>, next: Option<&Tok>) -> bool {
    let mine = prev.is_some_and(|p| {
        MY.contains(&p.lower.as_str()) || matches!(p.lower.as_str(), "die" | "der" | "the")
    });
    (matches!(t.lower.as_str(), "frau" | "mann" | "wife" | "husband") && mine)
        || KINSHIP.contains(&t.lower.as_str())
            && !matches!(
                t.lower.as_str(),
                "auftrag"
                    | "namen"
                    | "behalf"
                    | "taraf"
                    | "तरफ़"
                    | "तरफ"
                    | "liye"
                    | "लिए"
                    | "בשם"
                    | "בשביל"
                    | "עבור"
                    | "מטעם"
            )
        || (matches!(t.lower.as_str(), "frau" | "mann")
            && next.is_some_and(|n| POSSESSIVE_BEFORE_NAME.contains(&n.lower.as_str())))
}

/// Third-party constructions in one utterance.
fn third_party_hits(toks: &[Tok]) -> (Vec<Hit>, Vec<Read>) {
    let mut hits = Vec::new();
    let mut own = Vec::new();
    for i in 0..toks.len() {
        let t = &toks[i];
        // a) "Mrs Wilson's daughter", "James Taylor's son here".
        if possessive_stem(t).is_some() && is_name_token(t, false) {
            let mut start = i;
            while start > 0 {
                let p = &toks[start - 1];
                if p.punct_after && !p.tail.starts_with('.') {
                    break;
                }
                if is_title(&p.lower)
                    || (is_name_token(p, false) && never_a_name(&p.lower).is_none())
                {
                    start -= 1;
                } else {
                    break;
                }
            }
            let found = read_name_forward(toks, start, false);
            let what = toks.get(i + 1).map(|n| n.lower.clone()).unwrap_or_default();
            hits.push(Hit {
                strong: true,
                relation: format!("possessive ('s {what})").replace(" )", ")"),
                name: found.filter(|f| f.possessive),
                span: start..i + 1,
            });
            // "John Smith's carer, Margaret": the name after the role is the caller's.
            if let Some(role) = toks
                .get(i + 1)
                .filter(|r| KINSHIP.contains(&r.lower.as_str()))
            {
                if role.punct_after {
                    if let Some(f) = read_name_forward(toks, i + 2, false) {
                        let c = make_candidate(&f, format!("… {}, <name>", role.lower), toks, 0.6);
                        own.push(Read {
                            candidate: c,
                            span: f.start..f.end,
                            possessive: false,
                        });
                    }
                }
            }
            continue;
        }
        // b) kinship and role words.
        if is_kin(t, i.checked_sub(1).map(|p| &toks[p]), toks.get(i + 1)) {
            let next = toks.get(i + 1);
            let prev = i.checked_sub(1).map(|p| &toks[p]);
            if next.is_some_and(|n| {
                POSSESSIVE_BEFORE_NAME.contains(&n.lower.as_str()) && !t.punct_after
            }) {
                let f = read_name_forward(toks, i + 2, false);
                hits.push(Hit {
                    strong: true,
                    relation: format!(
                        "{} {}",
                        t.lower,
                        next.map(|n| n.lower.as_str()).unwrap_or("")
                    ),
                    span: i..f.as_ref().map_or(i + 2, |f| f.end),
                    name: f,
                });
                continue;
            }
            if let Some(p) = prev.filter(|p| POSSESSIVE_AFTER_NAME.contains(&p.lower.as_str())) {
                let _ = p;
                let mut cue_at = i - 1;
                if cue_at > 0 && TRAILING_HONORIFICS.contains(&toks[cue_at - 1].lower.as_str()) {
                    cue_at -= 1;
                }
                let f = read_name_backward(toks, cue_at, true);
                hits.push(Hit {
                    strong: true,
                    relation: format!("{} {}", toks[i - 1].lower, t.lower),
                    span: f.as_ref().map_or(i - 1, |f| f.start)..i + 1,
                    name: f,
                });
                continue;
            }
            let mine = prev.is_some_and(|p| MY.contains(&p.lower.as_str()))
                || next
                    .is_some_and(|n| matches!(n.lower.as_str(), "שלי" | "sheli" | "שלו" | "שלה"))
                || matches!(
                    t.lower.as_str(),
                    "אשתו" | "בעלה" | "בתו" | "בנו" | "אמו" | "אביו" | "בתה" | "בנה"
                );
            if mine {
                let mut k = i + 1;
                if toks
                    .get(k)
                    .is_some_and(|n| matches!(n.lower.as_str(), "שלי" | "sheli" | "שלו" | "שלה"))
                {
                    k += 1;
                }
                let f = read_name_forward(toks, k, false);
                hits.push(Hit {
                    strong: true,
                    relation: format!(
                        "{}{}",
                        prev.map(|p| format!("{} ", p.lower)).unwrap_or_default(),
                        t.lower
                    ),
                    span: i..f.as_ref().map_or(i + 1, |f| f.end),
                    name: f,
                });
                continue;
            }
        }
        // c) "on behalf of X", "im Auftrag von X", "calling for Mrs X", "בשם X".
        if let Some(p) = ON_BEHALF_BEFORE.iter().find(|p| matches_at(toks, i, p)) {
            let phrase = p.join(" ");
            let mut k = i + p.len();
            while toks.get(k).is_some_and(|n| {
                MY.contains(&n.lower.as_str())
                    || KINSHIP.contains(&n.lower.as_str())
                    || n.lower == "the"
            }) {
                k += 1;
            }
            let f = read_name_forward(toks, k, false);
            let strong = STRONG_BEHALF.contains(&phrase.as_str());
            if f.is_some() || strong {
                hits.push(Hit {
                    strong,
                    relation: phrase,
                    span: i..f.as_ref().map_or(k, |f| f.end),
                    name: f,
                });
            }
            continue;
        }
        // d) Hindi postpositions: "Sharma ji ki taraf se", "Verma ji ke liye".
        if let Some(p) = ON_BEHALF_AFTER.iter().find(|p| matches_at(toks, i, p)) {
            let phrase = p.join(" ");
            let mut cue_at = i;
            if cue_at > 0 && TRAILING_HONORIFICS.contains(&toks[cue_at - 1].lower.as_str()) {
                cue_at -= 1;
            }
            let f = read_name_backward(toks, cue_at, true);
            let strong = STRONG_BEHALF.contains(&phrase.as_str());
            if f.is_some() || strong {
                hits.push(Hit {
                    strong,
                    relation: phrase,
                    span: f.as_ref().map_or(i, |f| f.start)..i + p.len(),
                    name: f,
                });
            }
        }
    }
    (hits, own)
}

/// Third parties named in a piece of text (for a model's evidence quote, too).
pub(crate) fn third_parties_in(text: &str) -> Vec<ThirdParty> {
    let toks = collapse_spelling(tokenize(text));
    let (hits, _) = third_party_hits(&toks);
    let ctx = NameContext::default();
    hits.into_iter()
        .filter(|h| {
            h.strong
                || h.name.as_ref().is_some_and(|f| {
                    guarded(&make_candidate(f, String::new(), &toks, 0.5), &ctx).is_ok()
                })
        })
        .map(|h| ThirdParty {
            evidence: sentence_text(&toks, h.span.start.min(toks.len().saturating_sub(1))),
            name: h
                .name
                .map(|f| make_candidate(&f, h.relation.clone(), &toks, 0.5)),
            relation: h.relation,
        })
        .collect()
}

fn is_confirmation(text: &str) -> bool {
    let flat = flatten(text);
    !flat.is_empty()
        && (CONFIRMATIONS.contains(&flat.as_str())
            || flat.split_whitespace().count() <= 3
                && flat.split_whitespace().all(|w| {
                    CONFIRMATIONS.contains(&w) || FILLER.contains(&w) || GREETING_WORDS.contains(&w)
                }))
}

/// Read everything the transcript says about who called. `segments` are (speaker, text);
/// `caller_speaker` names the caller's label when the transcript has roles.
pub fn caller_evidence(
    segments: &[(String, String)],
    caller_speaker: Option<&str>,
    ctx: &NameContext,
) -> CallerEvidence {
    let toks: Vec<Vec<Tok>> = segments
        .iter()
        .map(|(_, t)| collapse_spelling(tokenize(t)))
        .collect();
    let signals: Vec<Option<&str>> = segments
        .iter()
        .zip(&toks)
        .map(|((_, t), k)| agent_signal(t, k, ctx))
        .collect();
    let mut ev = CallerEvidence::default();
    // Who is the caller?
    let is_caller: Vec<bool> = match caller_speaker {
        Some(c) => {
            ev.attribution = format!("speaker '{c}' is the caller (labelled)");
            segments.iter().map(|(sp, _)| sp == c).collect()
        }
        None => {
            let mut labels: Vec<&str> = segments.iter().map(|(s, _)| s.as_str()).collect();
            labels.sort_unstable();
            labels.dedup();
            let mut best: Option<(&str, usize)> = None;
            for l in &labels {
                let n = segments
                    .iter()
                    .zip(&signals)
                    .filter(|((sp, _), s)| sp == l && s.is_some())
                    .count();
                if n > 0 && best.is_none_or(|(_, m)| n > m) {
                    best = Some((l, n));
                }
            }
            let agent = best.map(|(l, _)| l).filter(|_| labels.len() > 1);
            match agent {
                Some(a) => {
                    let why = segments
                        .iter()
                        .zip(&signals)
                        .find_map(|((sp, _), s)| (sp == a).then_some(*s).flatten())
                        .unwrap_or("agent-like");
                    ev.attribution =
                        format!("speaker '{a}' is the agent ({why}); the others are the caller");
                    segments
                        .iter()
                        .zip(&signals)
                        .map(|((sp, _), s)| sp != a && s.is_none())
                        .collect()
                }
                None => {
                    let dropped = signals.iter().filter(|s| s.is_some()).count();
                    ev.attribution = format!(
                        "speakers not labelled: {dropped} agent-like segment(s) set aside, the rest read as the caller's"
                    );
                    signals.iter().map(|s| s.is_none()).collect()
                }
            }
        }
    };
    // Names the agent learned about themselves and addressed the caller with.
    let mut ctx = ctx.clone();
    for (i, k) in toks.iter().enumerate() {
        if is_caller[i] {
            continue;
        }
        for r in cue_candidates(k) {
            if r.candidate.name.split_whitespace().count() <= 2 {
                ctx.agent_names.push(r.candidate.name.clone());
            }
        }
        for r in addressed_names(k) {
            let mut c = r.candidate;
            if let Some(next) = segments
                .get(i + 1)
                .filter(|_| is_caller.get(i + 1) == Some(&true) || caller_speaker.is_none())
            {
                if is_confirmation(&next.1) {
                    c.cue = "agent addressed the caller; the answer only confirmed".into();
                }
            }
            if guarded(&c, &ctx).is_ok() {
                ev.addressed.push(c);
            }
        }
    }
    // The agent may have asked for the name: the caller's next turn is an answer.
    let asked: Vec<bool> = (0..segments.len())
        .map(|i| {
            i > 0 && !is_caller[i - 1] && {
                let flat = flatten(&segments[i - 1].1);
                ASKS_NAME.any_in(&flat)
            }
        })
        .collect();
    let mut found: Vec<(NameCandidate, usize, usize)> = Vec::new();
    let mut first_caller = true;
    for (i, k) in toks.iter().enumerate() {
        if !is_caller[i] {
            continue;
        }
        ev.caller_texts.push(segments[i].1.clone());
        let (mut hits, own) = third_party_hits(k);
        hits.retain(|h| {
            h.strong
                || h.name.as_ref().is_some_and(|f| {
                    guarded(&make_candidate(f, String::new(), k, 0.5), &ctx).is_ok()
                })
        });
        let overlaps = |span: &std::ops::Range<usize>| {
            hits.iter()
                .any(|h| h.span.start < span.end && span.start < h.span.end)
        };
        for h in &hits {
            let name = h
                .name
                .as_ref()
                .map(|f| make_candidate(f, h.relation.clone(), k, 0.5));
            let name = match name {
                Some(c) => match guarded(&c, &ctx) {
                    Ok(()) => Some(c),
                    Err(why) => {
                        ev.rejected.push((c.name.clone(), why.to_string()));
                        None
                    }
                },
                None => None,
            };
            ev.third_parties.push(ThirdParty {
                name,
                relation: h.relation.clone(),
                evidence: sentence_text(k, h.span.start.min(k.len().saturating_sub(1))),
            });
        }
        let mut reads: Vec<Read> = cue_candidates(k)
            .into_iter()
            .filter(|r| !r.possessive && !overlaps(&r.span))
            .collect();
        reads.extend(own);
        if asked[i] {
            if let Some(r) = bare_name(k, true) {
                if !overlaps(&r.span) {
                    reads.push(r);
                }
            }
        } else if first_caller {
            if let Some(r) = bare_name(k, false) {
                if !overlaps(&r.span) {
                    reads.push(r);
                }
            }
        }
        first_caller = false;
        for r in reads {
            match guarded(&r.candidate, &ctx) {
                Ok(()) => found.push((r.candidate, i, r.span.start)),
                Err(why) => ev
                    .rejected
                    .push((r.candidate.name.clone(), why.to_string())),
            }
        }
    }
    let _ = ANSWER_CONFIDENCE;
    let _ = title_text;
    ev.name = found
        .into_iter()
        .min_by(|a, b| {
            b.0.confidence
                .total_cmp(&a.0.confidence)
                .then(a.1.cmp(&b.1))
                .then(a.2.cmp(&b.2))
        })
        .map(|(c, _, _)| c);
    ev
}
