//! The gender lexicon's first names, prepared once for the per-word questions name
//! extraction and matching ask of every call: is this word a known first name, and of
//! which gender. Asking by walking the lexicon and folding (or, for Devanagari and Hebrew
//! words, building a spelling pattern) per entry was half of a worker's CPU.

use super::fold::{fold_key, latin_symbols, CrossScript};
use super::lexicon::{FEMALE_FIRST, MALE_FIRST};
use super::text::{script_of, Script};
use std::collections::HashSet;
use std::sync::OnceLock;

/// The female and male first names, folded.
pub(crate) fn folded() -> &'static (HashSet<String>, HashSet<String>) {
    static SETS: OnceLock<(HashSet<String>, HashSet<String>)> = OnceLock::new();
    SETS.get_or_init(|| {
        (
            FEMALE_FIRST.iter().map(|n| fold_key(n)).collect(),
            MALE_FIRST.iter().map(|n| fold_key(n)).collect(),
        )
    })
}

/// [`latin_symbols`] of each name of a list.
type Symbols = Vec<Vec<&'static str>>;

/// The Latin symbols of the female and male first names written in Latin script.
fn latin() -> &'static (Symbols, Symbols) {
    static SYMS: OnceLock<(Symbols, Symbols)> = OnceLock::new();
    SYMS.get_or_init(|| {
        let syms = |names: &[&str]| -> Symbols {
            names
                .iter()
                .filter(|n| script_of(n) == Some(Script::Latin))
                .map(|n| latin_symbols(n))
                .filter(|s| !s.is_empty())
                .collect()
        };
        (syms(FEMALE_FIRST), syms(MALE_FIRST))
    })
}

/// Whether a Devanagari or Hebrew word can be a spelling of a Latin-script female / male
/// first name of the lexicon (`fold::Spelling::CrossScript`); (false, false) for a word in
/// another script.
pub(crate) fn cross_script(w: &str) -> (bool, bool) {
    let Some(p) = CrossScript::of(w) else {
        return (false, false);
    };
    let (female, male) = latin();
    (
        female.iter().any(|s| p.matches(s)),
        male.iter().any(|s| p.matches(s)),
    )
}

/// A first name from the gender lexicon, in any script.
pub(crate) fn is_known(w: &str) -> bool {
    if script_of(w) == Some(Script::Latin) {
        let (female, male) = folded();
        let k = fold_key(w);
        return female.contains(&k) || male.contains(&k);
    }
    let (f, m) = cross_script(w);
    f || m
}
