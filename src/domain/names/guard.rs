//! The guard every name passes, whichever rule or model produced it.

use super::fold::fold_key;
use super::lexicon::*;
use super::normalize_name;
use super::text::{canonical, flatten, is_mark, script_of, script_of_char, Script};

/// What the business itself is called and who answers its phones: a caller's name is
/// never one of these ("Bristol Plumbing, Sarah speaking" stores neither).
#[derive(Debug, Clone, Default)]
pub struct NameContext {
    /// The business's own name ("Bristol Plumbing Ltd", "Zahnarztpraxis Dr. Weber").
    pub business_name: Option<String>,
    /// Names of the business's agents (the call's agent, known staff).
    pub agent_names: Vec<String>,
}

impl NameContext {
    pub fn new(business_name: Option<&str>, agent_names: &[&str]) -> Self {
        NameContext {
            business_name: business_name.map(str::to_string),
            agent_names: agent_names
                .iter()
                .filter(|a| !a.trim().is_empty())
                .map(|a| a.to_string())
                .collect(),
        }
    }

    /// Folded tokens of the business name without legal/generic words.
    pub(crate) fn business_tokens(&self) -> Vec<String> {
        self.business_name
            .as_deref()
            .map(|b| {
                flatten(b)
                    .split_whitespace()
                    .filter(|t| !TITLES.contains(t) && t.chars().count() > 1)
                    .map(fold_key)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn agent_tokens(&self) -> Vec<Vec<String>> {
        self.agent_names
            .iter()
            .map(|a| normalize_name(a).split_whitespace().map(fold_key).collect())
            .collect()
    }
}

/// The guard every name passes, from the rules or from a model. `Err` says why not.
pub fn is_plausible_name(s: &str) -> Result<(), &'static str> {
    is_plausible_name_in(s, &NameContext::default())
}

/// [`is_plausible_name`] that also refuses the business's own name and its agents' names.
pub fn is_plausible_name_in(s: &str, ctx: &NameContext) -> Result<(), &'static str> {
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
            .any(|g| plain.starts_with(&format!("{g} ")) || plain.ends_with(&format!(" {g}")))
    {
        return Err("starts with a greeting");
    }
    if tokens.iter().any(|t| PRONOUNS.contains(t)) {
        return Err("a pronoun, not a name");
    }
    if tokens
        .iter()
        .any(|t| COMPANY_WORDS.contains(t) || is_business_compound(t))
    {
        return Err("looks like a company, not a person");
    }
    if tokens.iter().any(|t| KINSHIP.contains(t)) {
        return Err("a kinship or role word, not a name");
    }
    for (i, t) in tokens.iter().enumerate() {
        // "Ken Barlow": a first name that is filler elsewhere is fine before a surname.
        let exempt = i == 0 && tokens.len() > 1 && NAME_LIKE_FILLER.contains(t);
        if exempt {
            continue;
        }
        if COMMON_WORDS.contains(t) || FUNCTION_WORDS.contains(t) {
            return Err("contains an ordinary word, not a name");
        }
        if FILLER.contains(t) || GREETING_WORDS.contains(t) {
            return Err("contains a greeting or filler word");
        }
    }
    if n.chars().filter(|c| c.is_alphabetic()).count() < 2 {
        return Err("too short for a name");
    }
    for t in &tokens {
        looks_like_a_name_word(t)?;
    }
    // Ordinary German nouns are capitalized too; a name written ALL IN CAPITALS with
    // more than three letters is an acronym or a shout ("GMBH", "HILFE").
    if !text.chars().any(char::is_lowercase)
        && text
            .split_whitespace()
            .any(|w| w.chars().filter(|c| c.is_uppercase()).count() > 3)
    {
        return Err("written in capitals: an acronym, not a name");
    }
    // The business's own name and its agents.
    let folded: Vec<String> = tokens.iter().map(|t| fold_key(t)).collect();
    let business = ctx.business_tokens();
    if !business.is_empty() && folded.iter().all(|t| business.contains(t)) {
        return Err("the business's own name, not the caller's");
    }
    for agent in ctx.agent_tokens() {
        if agent.is_empty() {
            continue;
        }
        if folded == agent || (folded.len() == 1 && agent.first() == folded.first()) {
            return Err("the agent's name, not the caller's");
        }
    }
    Ok(())
}

/// A single normalized word looks like a name word in its script.
fn looks_like_a_name_word(t: &str) -> Result<(), &'static str> {
    let mut scripts = t.chars().filter_map(script_of_char);
    let first = scripts.next();
    if scripts.any(|s| Some(s) != first) {
        return Err("mixes scripts in one word");
    }
    match script_of(t) {
        Some(Script::Hebrew) => {
            // Final letter forms (ך ם ן ף ץ) only end a word.
            let chars: Vec<char> = t.chars().filter(|c| !is_mark(*c)).collect();
            if chars[..chars.len().saturating_sub(1)]
                .iter()
                .any(|c| matches!(c, 'ך' | 'ם' | 'ן' | 'ף' | 'ץ'))
            {
                return Err("not a Hebrew word (final letter inside)");
            }
        }
        Some(Script::Devanagari) if t.chars().next().is_some_and(is_mark) => {
            return Err("not a Devanagari word (starts with a sign)");
        }
        Some(Script::Latin) => {
            let letters: Vec<char> = t.chars().filter(|c| c.is_alphabetic()).collect();
            let vowels = letters
                .iter()
                .filter(|c| "aeiouyäöüáàâéèêíìîóòôúùûåæøœ".contains(**c))
                .count();
            if letters.len() > 3 && vowels == 0 {
                return Err("no vowels: not a name word");
            }
        }
        _ => {}
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
    guard_llm_name_in(name, evidence_quote, transcript, &NameContext::default())
}

/// [`guard_llm_name`] with the business context; the quote must also not make the name a
/// third party's ("Mrs Wilson's daughter", "on behalf of …").
pub fn guard_llm_name_in(
    name: &str,
    evidence_quote: &str,
    transcript: &str,
    ctx: &NameContext,
) -> Result<String, String> {
    let shown = |s: &str| -> String {
        let head: String = s.chars().take(80).collect();
        if head.len() < s.len() {
            format!("{head:?}…")
        } else {
            format!("{head:?}")
        }
    };
    is_plausible_name_in(name, ctx)
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
    let quote_words: Vec<String> = quote.split_whitespace().map(fold_key).collect();
    for word in normalize_name(name).split_whitespace() {
        if !quote_words.contains(&fold_key(word)) {
            return Err(format!(
                "evidence quote {} does not contain {word:?}",
                shown(evidence_quote)
            ));
        }
    }
    let third = super::attribution::third_parties_in(evidence_quote);
    if let Some(tp) = third.first() {
        return Err(format!(
            "evidence quote {} speaks of someone else ({})",
            shown(evidence_quote),
            tp.relation
        ));
    }
    let kept: Vec<&str> = name
        .split_whitespace()
        .filter(|w| !TITLES.contains(&flatten(w).as_str()))
        .collect();
    Ok(kept.join(" "))
}
