//! Caller numbers: E.164 normalization and withheld-number detection. A withheld or
//! malformed number is a normal case (it goes down the name path), never an error.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumberStatus {
    Valid,
    Withheld,
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
    pub e164: Option<String>,
    /// Why, in words, for the call trace.
    pub reason: String,
}

/// Strings carriers and platforms put in place of a withheld caller id.
const WITHHELD_WORDS: &[&str] = &[
    "anonymous",
    "restricted",
    "unknown",
    "private",
    "unavailable",
    "withheld",
    "blocked",
    "none",
    "null",
];

/// Twilio's keypad-spelled sentinels and other all-zero placeholders seen in the wild.
const SENTINELS: &[(&str, &str)] = &[
    ("266696687", "Twilio sentinel ANONYMOUS"),
    ("7378742833", "Twilio sentinel RESTRICTED"),
    ("2562533", "Twilio sentinel BLOCKED"),
    ("8656696", "Twilio sentinel UNKNOWN"),
    ("86282452253", "Twilio sentinel UNAVAILABLE"),
    ("1266696687", "Twilio sentinel ANONYMOUS"),
    ("0000000000", "all-zero placeholder"),
];

/// Normalize `raw` to E.164 with `default_region` (ISO code such as "DE") for national numbers.
pub fn normalize_phone(raw: Option<&str>, default_region: &str) -> PhoneResult {
    let withheld = |reason: String| PhoneResult {
        status: NumberStatus::Withheld,
        e164: None,
        reason,
    };
    let s = raw.unwrap_or("").trim();
    if s.is_empty() {
        return withheld("no caller id (empty)".into());
    }
    let lower = s.to_lowercase();
    // SIP form: "anonymous" <anonymous@anonymous.invalid>
    if lower.contains("@anonymous.invalid") || lower.starts_with("sip:anonymous") {
        return withheld(format!("SIP anonymous caller id {s:?}"));
    }
    let word: String = lower.chars().filter(|c| c.is_alphabetic()).collect();
    if !word.is_empty() && !lower.chars().any(|c| c.is_ascii_digit()) {
        if let Some(w) = WITHHELD_WORDS.iter().find(|w| word.contains(**w)) {
            return withheld(format!("caller id says {w:?}"));
        }
    }
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    if let Some((_, what)) = SENTINELS.iter().find(|(d, _)| *d == digits) {
        return withheld(format!("{what} ({s})"));
    }
    if !digits.is_empty() && digits.chars().all(|c| c == '0') {
        return withheld(format!("all-zero number {s:?}"));
    }
    let malformed = |why: String| PhoneResult {
        status: NumberStatus::Malformed,
        e164: None,
        reason: why,
    };
    if digits.len() < 4 || digits.len() > 17 {
        return malformed(format!(
            "{s:?} has {} digits: not a phone number",
            digits.len()
        ));
    }
    if s.chars()
        .any(|c| !(c.is_ascii_digit() || " +-()./".contains(c)))
    {
        return malformed(format!(
            "{s:?} contains characters a phone number does not have"
        ));
    }
    let region: Option<phonenumber::country::Id> =
        default_region.trim().to_uppercase().parse().ok();
    let input = s.to_string();
    // The parser has panicked on odd input in the past: a panic is a malformed number.
    let parsed = std::panic::catch_unwind(move || {
        phonenumber::parse(region, &input).map(|n| {
            (
                n.is_valid(),
                n.format().mode(phonenumber::Mode::E164).to_string(),
            )
        })
    });
    match parsed {
        Ok(Ok((true, e164))) => PhoneResult {
            status: NumberStatus::Valid,
            reason: format!("{s:?} → {e164}"),
            e164: Some(e164),
        },
        Ok(Ok((false, e164))) => malformed(format!(
            "{s:?} parses as {e164} but is not a valid number for its region"
        )),
        Ok(Err(e)) => malformed(format!(
            "{s:?} does not parse as a phone number (region {default_region}): {e}"
        )),
        Err(_) => malformed(format!("{s:?} could not be parsed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(raw: &str, region: &str) -> (NumberStatus, Option<String>) {
        let r = normalize_phone(Some(raw), region);
        (r.status, r.e164)
    }

    #[test]
    fn national_and_international_numbers_normalize() {
        assert_eq!(
            st("+49 30 1234567", "DE"),
            (NumberStatus::Valid, Some("+49301234567".into()))
        );
        assert_eq!(
            st("030 1234567", "DE"),
            (NumberStatus::Valid, Some("+49301234567".into()))
        );
        assert_eq!(
            st("+91 98450 98450", "DE"),
            (NumberStatus::Valid, Some("+919845098450".into()))
        );
        assert_eq!(st("098450 98450", "IN").0, NumberStatus::Valid);
        assert_eq!(
            st("052-555-1234", "IL").0,
            NumberStatus::Valid,
            "{:?}",
            normalize_phone(Some("052-555-1234"), "IL")
        );
        assert_eq!(st("(212) 555-2368", "US").0, NumberStatus::Valid);
    }

    #[test]
    fn withheld_forms_are_detected_with_a_reason() {
        for raw in [
            "anonymous",
            "Anonymous",
            "RESTRICTED",
            "unknown",
            "private",
            "Unavailable",
            "withheld",
            "blocked",
            "",
            "   ",
        ] {
            let r = normalize_phone(Some(raw), "DE");
            assert_eq!(r.status, NumberStatus::Withheld, "{raw:?}: {r:?}");
            assert!(!r.reason.is_empty());
        }
        assert_eq!(normalize_phone(None, "DE").status, NumberStatus::Withheld);
        for raw in [
            "+266696687",
            "+7378742833",
            "+2562533",
            "+8656696",
            "+86282452253",
            "1266696687",
            "0000000000",
        ] {
            let r = normalize_phone(Some(raw), "US");
            assert_eq!(r.status, NumberStatus::Withheld, "{raw:?}: {r:?}");
            assert!(
                r.reason.contains("sentinel") || r.reason.contains("zero"),
                "{r:?}"
            );
        }
        let sip = normalize_phone(Some("\"anonymous\" <anonymous@anonymous.invalid>"), "DE");
        assert_eq!(sip.status, NumberStatus::Withheld);
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        for raw in [
            "++--",
            "١٢٣",
            "12",
            "call me",
            "+49 30 abc",
            "99999999999999999999",
            "+0",
            "+999 1234567",
        ] {
            let r = normalize_phone(Some(raw), "DE");
            assert_ne!(r.status, NumberStatus::Valid, "{raw:?}: {r:?}");
        }
        // Random bytes never panic.
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for _ in 0..3000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let len = (x % 20) as usize;
            let s: String = (0..len)
                .map(|i| char::from(b" +0123456789-()abc#*"[((x >> (i * 3)) % 20) as usize]))
                .collect();
            let _ = normalize_phone(Some(&s), "DE");
        }
    }
}
