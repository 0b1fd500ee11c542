//! Caller numbers: E.164 normalization and withheld-number detection.
//!
//! A withheld or malformed number is a normal case (the call goes down the name path), never
//! an error: every outcome carries a reason in words for the call trace, so an operator can
//! see *why* a call was treated as anonymous ("Twilio sentinel +266696687 (ANONYMOUS)").

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberStatus {
    /// Parsed and valid for its region: `e164` is set.
    Valid,
    /// The platform or carrier says the caller hid the number.
    Withheld,
    /// Something was there but it is not a usable phone number.
    Malformed,
}

impl NumberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            NumberStatus::Valid => "valid",
            NumberStatus::Withheld => "withheld",
            NumberStatus::Malformed => "malformed",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhoneResult {
    pub status: NumberStatus,
    /// Only for `Valid`.
    pub e164: Option<String>,
    /// Why, in words, for the call trace.
    pub reason: String,
}

/// Words carriers, PBXs and platforms put in place of a withheld caller id (checked as
/// substrings of the letters, so "Anonymous Caller" and "PRIVATE_NUMBER" are caught too).
/// Longer words first so the reason names the most specific one.
const WITHHELD_WORDS: &[&str] = &[
    "unavailable",
    "unterdrueckt",
    "unterdrückt",
    "restricted",
    "anonymous",
    "unbekannt",
    "withheld",
    "blocked",
    "private",
    "unknown",
    "anonym",
    "privat",
    "none",
    "null",
];

/// Twilio's keypad-spelled sentinels (the digits of the word on a phone keypad) and the
/// placeholders seen in the wild, compared on digits only.
const SENTINELS: &[(&str, &str)] = &[
    ("266696687", "Twilio sentinel +266696687 (ANONYMOUS)"),
    ("7378742833", "Twilio sentinel +7378742833 (RESTRICTED)"),
    ("2562533", "Twilio sentinel +2562533 (BLOCKED)"),
    ("8656696", "Twilio sentinel +8656696 (UNKNOWN)"),
    ("86282452253", "Twilio sentinel +86282452253 (UNAVAILABLE)"),
    (
        "1266696687",
        "sentinel 1266696687 (ANONYMOUS with a leading 1)",
    ),
    ("0000000000", "sentinel 0000000000 (all-zero placeholder)"),
];

/// Inputs longer than this are not caller ids; refusing them early keeps the reason
/// readable and the parser away from pathological input.
const MAX_INPUT_CHARS: usize = 64;
/// E.164 allows 15 digits; an international prefix ("00", "011") adds up to 3.
const MAX_DIGITS: usize = 18;
/// The shortest real subscriber numbers (small countries, no area code) have 5 digits.
const MIN_DIGITS: usize = 5;

/// Normalize `raw` to E.164, using `default_region` (ISO 3166 code such as "DE", "IN",
/// "IL", "US") for numbers written without a country code.
pub fn normalize_phone(raw: Option<&str>, default_region: &str) -> PhoneResult {
    let Some(raw) = raw else {
        return withheld("no caller id (field missing)".into());
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return withheld("no caller id (empty)".into());
    }
    if trimmed.chars().count() > MAX_INPUT_CHARS {
        return malformed(format!(
            "{} is {} characters long: not a caller id",
            shown(trimmed),
            trimmed.chars().count()
        ));
    }
    // NFKC turns full-width digits and plus signs into ASCII ones; other scripts' decimal
    // digits (Arabic-Indic, Devanagari, …) are mapped by hand.
    let folded: String = trimmed.nfkc().map(ascii_digit).collect();
    let address = sip_user_part(&folded);
    let lower = address.to_lowercase();
    // SIP's RFC 3323 anonymous form: "anonymous" <sip:anonymous@anonymous.invalid>.
    if folded.to_lowercase().contains("anonymous.invalid") {
        return withheld(format!("SIP anonymous caller id {}", shown(trimmed)));
    }
    if !lower.chars().any(|c| c.is_ascii_digit()) {
        let letters: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
        if let Some(word) = WITHHELD_WORDS.iter().find(|w| letters.contains(**w)) {
            return withheld(format!("caller id {} says {word:?}", shown(trimmed)));
        }
        return malformed(format!("{} has no digits", shown(trimmed)));
    }
    if let Some(bad) = address.chars().find(|c| !is_phone_char(*c)) {
        return malformed(format!(
            "{} contains {bad:?}, which a phone number does not have",
            shown(trimmed)
        ));
    }
    let digits: String = address.chars().filter(|c| c.is_ascii_digit()).collect();
    if let Some((_, what)) = SENTINELS.iter().find(|(d, _)| *d == digits) {
        return withheld(format!("{what}: caller id {}", shown(trimmed)));
    }
    if digits.chars().all(|c| c == '0') {
        return withheld(format!("all-zero placeholder {}", shown(trimmed)));
    }
    if digits.len() < MIN_DIGITS || digits.len() > MAX_DIGITS {
        return malformed(format!(
            "{} has {} digits: not a phone number",
            shown(trimmed),
            digits.len()
        ));
    }
    parse_valid(&address, trimmed, default_region)
}

/// Run the libphonenumber port on input that already passed the cheap checks. The parser
/// has panicked on odd input in the past (it unwraps internally); a panic is caught and
/// reported as a malformed number instead of killing the worker.
fn parse_valid(address: &str, shown_raw: &str, default_region: &str) -> PhoneResult {
    let region_code = default_region.trim().to_ascii_uppercase();
    let region: Option<phonenumber::country::Id> = region_code.parse().ok();
    let international = address.trim_start_matches(['(', ' ']).starts_with('+');
    if region.is_none() && !international {
        return malformed(format!(
            "{} has no country code and the default region {default_region:?} is not a known region code",
            shown(shown_raw)
        ));
    }
    let input = address.to_string();
    let parsed = std::panic::catch_unwind(move || {
        phonenumber::parse(region, &input).map(|n| {
            let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
            (n.is_valid(), e164)
        })
    });
    match parsed {
        Ok(Ok((true, e164))) => PhoneResult {
            status: NumberStatus::Valid,
            reason: format!("{} → {e164}", shown(shown_raw)),
            e164: Some(e164),
        },
        Ok(Ok((false, e164))) => malformed(format!(
            "{} reads as {e164} but is not a valid number (default region {region_code})",
            shown(shown_raw)
        )),
        Ok(Err(e)) => malformed(format!(
            "{} does not parse as a phone number (default region {region_code}): {e}",
            shown(shown_raw)
        )),
        Err(_) => malformed(format!(
            "{} made the phone number parser panic; treated as malformed",
            shown(shown_raw)
        )),
    }
}

fn withheld(reason: String) -> PhoneResult {
    PhoneResult {
        status: NumberStatus::Withheld,
        e164: None,
        reason,
    }
}

fn malformed(reason: String) -> PhoneResult {
    PhoneResult {
        status: NumberStatus::Malformed,
        e164: None,
        reason,
    }
}

/// Characters a written phone number may contain ("+49 (30) 123-45.67", "030/1234567").
fn is_phone_char(c: char) -> bool {
    c.is_ascii_digit() || matches!(c, ' ' | '+' | '-' | '(' | ')' | '.' | '/')
}

/// Decimal digits of other scripts as ASCII, so "٠٣٠ ١٢٣٤٥٦٧" reads like "030 1234567".
fn ascii_digit(c: char) -> char {
    let zero = match c as u32 {
        0x0660..=0x0669 => 0x0660, // Arabic-Indic
        0x06F0..=0x06F9 => 0x06F0, // Extended Arabic-Indic (Persian, Urdu)
        0x0966..=0x096F => 0x0966, // Devanagari
        0x09E6..=0x09EF => 0x09E6, // Bengali
        _ => return c,
    };
    char::from(b'0' + (c as u32 - zero) as u8)
}

/// The user part of a SIP/tel URI or a `"Display" <sip:user@host>` header; anything else
/// unchanged. `"Anna" <sip:+4930123456@pbx.example;user=phone>` → `+4930123456`.
fn sip_user_part(s: &str) -> String {
    let inner = match (s.find('<'), s.rfind('>')) {
        (Some(a), Some(b)) if a < b => &s[a + 1..b],
        _ => s,
    };
    let mut addr = inner.trim();
    for scheme in ["sips:", "sip:", "tel:"] {
        if addr.len() >= scheme.len()
            && addr.is_char_boundary(scheme.len())
            && addr[..scheme.len()].eq_ignore_ascii_case(scheme)
        {
            addr = &addr[scheme.len()..];
            break;
        }
    }
    let addr = addr.split('@').next().unwrap_or(addr);
    let addr = addr.split(';').next().unwrap_or(addr);
    addr.trim().to_string()
}

/// The raw value quoted for a reason, cut short so a junk header cannot flood the trace.
fn shown(s: &str) -> String {
    const MAX: usize = 40;
    if s.chars().count() <= MAX {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(MAX).collect();
        format!("{head:?}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(raw: &str, region: &str) -> (NumberStatus, Option<String>) {
        let r = normalize_phone(Some(raw), region);
        (r.status, r.e164)
    }

    fn valid(e164: &str) -> (NumberStatus, Option<String>) {
        (NumberStatus::Valid, Some(e164.to_string()))
    }

    #[test]
    fn german_numbers_normalize_with_and_without_country_code() {
        assert_eq!(st("+49 30 1234567", "DE"), valid("+49301234567"));
        assert_eq!(st("030 1234567", "DE"), valid("+49301234567"));
        assert_eq!(st("030/1234567", "DE"), valid("+49301234567"));
        assert_eq!(st("0049 30 1234567", "DE"), valid("+49301234567"));
        // A country code wins over the default region.
        assert_eq!(st("+49 30 1234567", "US"), valid("+49301234567"));
        // The region code is case-insensitive.
        assert_eq!(st("030 1234567", "de"), valid("+49301234567"));
    }

    #[test]
    fn indian_israeli_and_us_numbers_normalize() {
        assert_eq!(st("+91 98450 98450", "DE"), valid("+919845098450"));
        assert_eq!(st("098450 98450", "IN"), valid("+919845098450"));
        assert_eq!(st("98450 98450", "IN"), valid("+919845098450"));
        assert_eq!(st("052-555-1234", "IL"), valid("+972525551234"));
        assert_eq!(st("+972 52 555 1234", "IN"), valid("+972525551234"));
        assert_eq!(st("(212) 555-2368", "US"), valid("+12125552368"));
    }

    #[test]
    fn sip_and_tel_uris_and_other_scripts_digits_are_unwrapped() {
        assert_eq!(
            st("\"Anna\" <sip:+4930123456@pbx.example;user=phone>", "DE"),
            valid("+4930123456")
        );
        assert_eq!(st("tel:+49-30-1234567", "DE"), valid("+49301234567"));
        assert_eq!(st("٠٣٠ ١٢٣٤٥٦٧", "DE"), valid("+49301234567"));
        assert_eq!(
            st("＋４９ ３０ １２３４５６７", "DE"),
            valid("+49301234567")
        );
    }

    #[test]
    fn withheld_words_are_detected_in_any_case_with_the_word_in_the_reason() {
        for (raw, word) in [
            ("anonymous", "anonymous"),
            ("Anonymous", "anonymous"),
            ("RESTRICTED", "restricted"),
            ("unknown", "unknown"),
            ("Private", "private"),
            ("Unavailable", "unavailable"),
            ("withheld", "withheld"),
            ("BLOCKED", "blocked"),
            ("Anonymous Caller", "anonymous"),
            ("PRIVATE_NUMBER", "private"),
            ("Rufnummer unterdrückt", "unterdrückt"),
        ] {
            let r = normalize_phone(Some(raw), "DE");
            assert_eq!(r.status, NumberStatus::Withheld, "{raw:?}: {r:?}");
            assert!(r.reason.contains(word), "{raw:?}: {}", r.reason);
            assert_eq!(r.e164, None);
        }
    }

    #[test]
    fn empty_missing_and_sip_anonymous_are_withheld() {
        for raw in ["", "   ", "\t\n"] {
            let r = normalize_phone(Some(raw), "DE");
            assert_eq!(r.status, NumberStatus::Withheld, "{raw:?}");
            assert!(r.reason.contains("empty"), "{}", r.reason);
        }
        let r = normalize_phone(None, "DE");
        assert_eq!(r.status, NumberStatus::Withheld);
        assert!(r.reason.contains("missing"), "{}", r.reason);
        for raw in [
            "\"anonymous\" <anonymous@anonymous.invalid>",
            "\"Anonymous\" <sip:anonymous@anonymous.invalid>",
            "sip:anonymous@anonymous.invalid",
            "\"ANONYMOUS\" <SIP:ANONYMOUS@ANONYMOUS.INVALID>",
        ] {
            let r = normalize_phone(Some(raw), "DE");
            assert_eq!(r.status, NumberStatus::Withheld, "{raw:?}");
            assert!(r.reason.contains("SIP anonymous"), "{}", r.reason);
        }
    }

    #[test]
    fn each_sentinel_is_withheld_and_named() {
        for (raw, name) in [
            ("+266696687", "ANONYMOUS"),
            ("+7378742833", "RESTRICTED"),
            ("+2562533", "BLOCKED"),
            ("+8656696", "UNKNOWN"),
            ("+86282452253", "UNAVAILABLE"),
            ("1266696687", "ANONYMOUS"),
            ("0000000000", "all-zero"),
        ] {
            for region in ["US", "DE", "IN", "IL"] {
                let r = normalize_phone(Some(raw), region);
                assert_eq!(
                    r.status,
                    NumberStatus::Withheld,
                    "{raw:?} in {region}: {r:?}"
                );
                assert!(r.reason.contains(name), "{raw:?}: {}", r.reason);
            }
        }
        assert_eq!(st("000 000", "DE").0, NumberStatus::Withheld);
        assert_eq!(st("+0", "DE").0, NumberStatus::Withheld);
    }

    #[test]
    fn garbage_is_malformed_with_a_reason() {
        for raw in [
            "++--",
            "١٢٣",
            "12",
            "call me",
            "+49 30 abc",
            "99999999999999999999",
            "+999 1234567",
            "+49 30",
            "()",
            "+",
            "0800 😀",
            "\u{1b}[31m0301234567",
        ] {
            let r = normalize_phone(Some(raw), "DE");
            assert_eq!(r.status, NumberStatus::Malformed, "{raw:?}: {r:?}");
            assert!(!r.reason.is_empty());
            assert_eq!(r.e164, None);
        }
        let long = "1".repeat(10_000);
        let r = normalize_phone(Some(&long), "DE");
        assert_eq!(r.status, NumberStatus::Malformed);
        assert!(r.reason.len() < 200, "the reason quotes a bounded prefix");
    }

    #[test]
    fn unknown_default_region_only_matters_for_national_numbers() {
        let r = normalize_phone(Some("030 1234567"), "XX");
        assert_eq!(r.status, NumberStatus::Malformed);
        assert!(r.reason.contains("default region"), "{}", r.reason);
        assert_eq!(st("+49 30 1234567", "XX"), valid("+49301234567"));
        assert_eq!(st("+49 30 1234567", ""), valid("+49301234567"));
    }

    /// xorshift64: a deterministic generator, so a failure reproduces.
    fn next(x: &mut u64) -> u64 {
        *x ^= *x << 13;
        *x ^= *x >> 7;
        *x ^= *x << 17;
        *x
    }

    #[test]
    fn random_input_never_panics() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        // Arbitrary bytes (mostly rejected before the parser).
        for _ in 0..1_000 {
            let len = (next(&mut x) % 24) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| next(&mut x) as u8).collect();
            let s = String::from_utf8_lossy(&bytes);
            let r = normalize_phone(Some(&s), "DE");
            assert!(r.status != NumberStatus::Valid || r.e164.is_some());
        }
        // Phone-shaped strings: these are the ones that reach the parser.
        const ALPHABET: &[u8] = b" +0123456789-()./";
        for region in ["DE", "IN", "IL", "US", "XX"] {
            for _ in 0..400 {
                let len = (next(&mut x) % 22) as usize;
                let s: String = (0..len)
                    .map(|_| char::from(ALPHABET[(next(&mut x) % ALPHABET.len() as u64) as usize]))
                    .collect();
                let r = normalize_phone(Some(&s), region);
                if r.status == NumberStatus::Valid {
                    let e = r.e164.as_deref().unwrap_or_default();
                    assert!(
                        e.starts_with('+') && e[1..].chars().all(|c| c.is_ascii_digit()),
                        "{s:?} → {e:?}"
                    );
                }
            }
        }
    }
}
