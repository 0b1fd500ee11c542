//! The caller's name: who said what (attribution), extraction from the caller's own speech
//! by cue phrases (German, English, Hindi, Hebrew), a guard that greetings, filler, kinship
//! words, business words and the business's own and its agents' names never pass, folding
//! and transliteration, spelled-out names, spoken phone numbers, and the scoring model that
//! decides between a link, review and nothing.
//!
//! Why cue phrases and not NER: in a phone call the caller introduces themselves with a
//! small set of formulas ("hier ist Frau Schreiber", "mera naam … hai", "קוראים לי …"), and
//! a formula says *whose* name it is. NER finds every name in the call, including the
//! agent's, the company's and the caller's mother's. Every candidate (ours or a model's)
//! passes [`is_plausible_name`], because the classic failure is "Guten Tag" stored as a
//! customer name.
//!
//! Matching follows record-linkage practice (every field is evidence for or against, and
//! some disagreements veto): see [`matching`].

pub mod attribution;
pub mod extract;
mod first_names;
pub mod fold;
pub mod guard;
mod lexicon;
pub mod matching;
mod spelled;
pub mod spoken_phone;
mod text;

pub use attribution::{caller_evidence, CallerEvidence, ThirdParty};
pub use extract::NameCandidate;
pub use fold::{fold_digraphs, fold_key, fold_umlauts, skeleton_keys, spelling, Spelling};
pub use guard::{
    guard_llm_name, guard_llm_name_in, is_plausible_name, is_plausible_name_in, NameContext,
};
pub use matching::{
    compound_key, compound_keys, compound_overflow_key, link_decision, name_keys, name_similarity,
    rank_candidates, rank_customers, rank_order, surname_key, word_keys, CandidateCustomer,
    LinkDecision, LinkEvidence, NameQuery, NameScore, QuerySource, RankedCandidate,
    AUTO_LINK_MIN_CUE, COMPOUND_MAX, COMPOUND_ONE_WORD, LINK_MARGIN,
};
pub use text::Script;

use text::{canonical, is_word_char};

/// Find the caller's self-introduction in `(speaker, text)` segments. With
/// `caller_speaker`, only that speaker's segments count; without it, the agent's lines are
/// recognised and skipped. The most confident candidate wins, the earliest among equals.
/// Names of third parties ("Mrs Wilson's daughter") and names the agent addressed are
/// never returned: see [`caller_evidence`] for those.
pub fn extract_caller_name(
    segments: &[(String, String)],
    caller_speaker: Option<&str>,
) -> Option<NameCandidate> {
    caller_evidence(segments, caller_speaker, &NameContext::default()).name
}

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
        .filter(|t| !lexicon::TITLES.contains(t) && !lexicon::TRAILING_HONORIFICS.contains(t))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests;
