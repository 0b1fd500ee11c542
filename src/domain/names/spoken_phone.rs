//! Phone numbers said aloud by the caller ("my number is 030 1234 5678", "oh seven seven
//! double oh…", "null dreißig, zwölf vierunddreißig…", "nau aath saat…", "אפס חמש
//! ארבע…"): digits, grouped digits and number words in English, German, Hindi (Latin and
//! Devanagari) and Hebrew. The digits are normalized with the business's region by the
//! phone rules ([`crate::domain::phone::normalize_phone`]); a spoken number that is a
//! customer's phone is strong evidence for an anonymous call.

use crate::domain::phone::{normalize_phone, NumberStatus};

/// A number the caller said.
#[derive(Debug, Clone, PartialEq)]
pub struct SpokenPhone {
    /// The digits as said ("+" kept when said).
    pub digits: String,
    /// Normalized with the business's region; None when not a valid number there.
    pub e164: Option<String>,
    /// The caller's words it came from.
    pub evidence: String,
}

fn digit_word(w: &str) -> Option<&'static str> {
    Some(match w {
        "zero" | "oh" | "o" | "null" | "nul" | "shunya" | "shoonya" | "sunya" | "शून्य" | "ज़ीरो"
        | "जीरो" | "אפס" | "efes" => "0",
        "one" | "eins" | "ein" | "ek" | "एक" | "אחת" | "אחד" | "achat" | "echad" | "ahat" => {
            "1"
        }
        "two" | "zwei" | "zwo" | "do" | "दो" | "שתיים" | "שתים" | "שניים" | "shtaim"
        | "shtayim" => "2",
        "three" | "drei" | "teen" | "tin" | "तीन" | "שלוש" | "שלושה" | "shalosh" => {
            "3"
        }
        "four" | "vier" | "char" | "chaar" | "चार" | "ארבע" | "ארבעה" | "arba" => {
            "4"
        }
        "five" | "fünf" | "fuenf" | "funf" | "paanch" | "panch" | "paach" | "पांच" | "पाँच"
        | "חמש" | "חמישה" | "chamesh" | "hamesh" => "5",
        "six" | "sechs" | "chhe" | "chhah" | "chah" | "che" | "chhe:" | "छह" | "छः" | "छे"
        | "שש" | "שישה" | "shesh" => "6",
        "seven" | "sieben" | "saat" | "sat" | "सात" | "שבע" | "שבעה" | "sheva" => "7",
        "eight" | "acht" | "aath" | "ath" | "आठ" | "שמונה" | "shmone" | "shmoneh" => "8",
        "nine" | "neun" | "nau" | "no" | "नौ" | "תשע" | "תשעה" | "tesha" => "9",
        _ => return None,
    })
}

fn tens_word(w: &str) -> Option<u32> {
    Some(match w {
        "ten" | "zehn" | "das" => 10,
        "eleven" | "elf" => 11,
        "twelve" | "zwölf" | "zwoelf" => 12,
        "thirteen" | "dreizehn" => 13,
        "fourteen" | "vierzehn" => 14,
        "fifteen" | "fünfzehn" | "fuenfzehn" => 15,
        "sixteen" | "sechzehn" => 16,
        "seventeen" | "siebzehn" => 17,
        "eighteen" | "achtzehn" => 18,
        "nineteen" | "neunzehn" => 19,
        "twenty" | "zwanzig" => 20,
        "thirty" | "dreißig" | "dreissig" => 30,
        "forty" | "vierzig" => 40,
        "fifty" | "fünfzig" | "fuenfzig" => 50,
        "sixty" | "sechzig" => 60,
        "seventy" | "siebzig" => 70,
        "eighty" | "achtzig" => 80,
        "ninety" | "neunzig" => 90,
        _ => return None,
    })
}

/// German "vierunddreißig" → 34.
fn german_compound(w: &str) -> Option<u32> {
    let (unit, tens) = w.split_once("und")?;
    let u: u32 = digit_word(if unit == "ein" { "eins" } else { unit })?
        .parse()
        .ok()?;
    let t = tens_word(tens)?;
    (t >= 20 && t % 10 == 0 && u > 0).then_some(t + u)
}

/// Words that say a number follows or is the caller's.
const PHONE_CUES: &[&str] = &[
    "number",
    "phone",
    "mobile",
    "cell",
    "landline",
    "reach",
    "ring",
    "nummer",
    "telefon",
    "telefonnummer",
    "handy",
    "handynummer",
    "rufnummer",
    "festnetz",
    "erreichbar",
    "erreichen",
    "zurückrufen",
    "rückruf",
    "mobil",
    "nambar",
    "numbar",
    "नंबर",
    "नम्बर",
    "फ़ोन",
    "फोन",
    "मोबाइल",
    "מספר",
    "טלפון",
    "נייד",
    "הנייד",
    "הטלפון",
    "המספר",
    "mispar",
    "telefon",
    "call",
];

fn devanagari_digits(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '०'..='९' => char::from_digit(c as u32 - '०' as u32, 10).unwrap_or(c),
            c => c,
        })
        .collect()
}

/// Digit runs said in one utterance, with whether a phone cue is near.
pub fn spoken_numbers(text: &str) -> Vec<(String, bool)> {
    let text = devanagari_digits(text);
    let lower = text.to_lowercase();
    let cue = super::text::flatten(&lower)
        .split_whitespace()
        .any(|w| PHONE_CUES.contains(&w));
    let mut out = Vec::new();
    let mut run = String::new();
    let mut words_in_run = 0;
    let mut pending_mult = 1;
    let flush = |run: &mut String, words: &mut usize, out: &mut Vec<(String, bool)>| {
        let n = run.chars().filter(|c| c.is_ascii_digit()).count();
        if (6..=15).contains(&n) {
            out.push((run.clone(), cue));
        }
        run.clear();
        *words = 0;
    };
    let raws: Vec<&str> = lower.split_whitespace().collect();
    let is_numberish = |r: &str| {
        let w = r.trim_matches(|c: char| !c.is_alphanumeric());
        w.chars().any(|c| c.is_ascii_digit())
            || digit_word(w).is_some()
            || matches!(w, "double" | "triple" | "doppel")
    };
    for (idx, raw) in raws.iter().copied().enumerate() {
        // Digits with separators ("030-1234", "(030)", "+49").
        let cleaned: String = raw
            .trim_matches(|c: char| !c.is_alphanumeric() && c != '+')
            .to_string();
        let sep_only = raw.chars().all(|c| "-/.,()".contains(c));
        if sep_only {
            continue;
        }
        if !cleaned.is_empty()
            && cleaned
                .chars()
                .all(|c| c.is_ascii_digit() || "+-/.()".contains(c))
            && cleaned.chars().any(|c| c.is_ascii_digit())
        {
            let d: String = cleaned
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect();
            for _ in 0..pending_mult {
                run.push_str(&d);
            }
            pending_mult = 1;
            words_in_run += 1;
        } else {
            let w = cleaned.trim_start_matches('ו');
            let w = if w.is_empty() { cleaned.as_str() } else { w };
            if matches!(w, "double" | "doppel" | "doppelt") {
                pending_mult = 2;
                continue;
            }
            if matches!(w, "triple" | "dreifach") {
                pending_mult = 3;
                continue;
            }
            if w == "plus" && run.is_empty() {
                run.push('+');
                continue;
            }
            // "oh"/"o"/"no"/"do" are words too: they count only inside a run.
            let weak = matches!(
                w,
                "oh" | "o" | "no" | "do" | "das" | "che" | "sat" | "tin" | "ath"
            );
            let next_numberish = raws.get(idx + 1).is_some_and(|n| is_numberish(n));
            if let Some(d) = digit_word(w)
                .filter(|_| !weak || !run.is_empty() || pending_mult > 1 || next_numberish)
            {
                for _ in 0..pending_mult {
                    run.push_str(d);
                }
                pending_mult = 1;
                words_in_run += 1;
            } else if let Some(n) = tens_word(w).or_else(|| german_compound(w)) {
                run.push_str(&n.to_string());
                words_in_run += 1;
            } else if !run.is_empty() && matches!(w, "and" | "und") {
                continue;
            } else {
                flush(&mut run, &mut words_in_run, &mut out);
                pending_mult = 1;
            }
        }
        // A run does not span sentences.
        if raw.ends_with(['.', '?', '!']) {
            flush(&mut run, &mut words_in_run, &mut out);
        }
    }
    flush(&mut run, &mut words_in_run, &mut out);
    out
}

/// Phone numbers the caller said, normalized with `region`. A run counts when a phone
/// word is near it ("my number is …") or it starts like a dialled number (0 or +) and
/// is long enough; order numbers and amounts stay out.
pub fn spoken_phones(caller_texts: &[String], region: &str) -> Vec<SpokenPhone> {
    let mut out: Vec<SpokenPhone> = Vec::new();
    for text in caller_texts {
        for (digits, cue) in spoken_numbers(text) {
            let n = digits.chars().filter(|c| c.is_ascii_digit()).count();
            let dialled = (digits.starts_with('0') || digits.starts_with('+')) && n >= 9;
            if !(cue || dialled) {
                continue;
            }
            let r = normalize_phone(Some(&digits), region);
            let e164 = (r.status == NumberStatus::Valid)
                .then_some(r.e164)
                .flatten();
            if out.iter().any(|p| p.digits == digits) {
                continue;
            }
            out.push(SpokenPhone {
                digits,
                e164,
                evidence: text.chars().take(200).collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(s: &str) -> Vec<String> {
        spoken_numbers(s).into_iter().map(|(d, _)| d).collect()
    }

    #[test]
    fn digits_and_words() {
        assert_eq!(
            digits("my number is 030 1234 5678, thanks"),
            ["03012345678"]
        );
        assert_eq!(
            digits("it's oh seven seven double oh, one two three four five six"),
            ["07700123456"]
        );
        assert_eq!(
            digits("null dreißig, zwölf vierunddreißig, sechsundfünfzig achtundsiebzig"),
            ["03012345678"]
        );
        assert_eq!(
            digits("mera number hai nau aath saat chhe paanch chaar teen do ek shunya"),
            ["9876543210"]
        );
        assert_eq!(digits("मेरा नंबर है ९८७६५ ४३२१०"), ["9876543210"]);
        assert_eq!(
            digits("המספר שלי אפס חמש ארבע, שלוש שתיים אחת, שבע שמונה תשע אפס"),
            ["0543217890"]
        );
        assert!(digits("I'd like two appointments at nine").is_empty());
    }

    #[test]
    fn normalized_with_the_region() {
        let p = spoken_phones(&["Meine Nummer ist 030 1234 5678.".into()], "DE");
        assert_eq!(p[0].e164.as_deref(), Some("+493012345678"));
        let p = spoken_phones(&["Order 4711 0815 22 please".into()], "DE");
        assert!(p.is_empty(), "{p:?}");
    }
}
