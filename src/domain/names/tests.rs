//! Unit tests of the name rules (the corpus lives in tests/).

use super::matching::tf_penalty;
use super::*;

const TF_MAX_PENALTY: f64 = 0.15;

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
    let t =
        "Agent: Guten Tag. Caller: Ja, hallo, hier ist Frau Schreiber, ich wollte einen Termin.";
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
    // A surname alone never links (issue 13, family 2): the one Zwiebelhuber is reviewed.
    let one = rank_candidates(
        "Zwiebelhuber",
        &[(1, "Karl Zwiebelhuber".into(), 0.001)],
        0.85,
        0.7,
    );
    assert!(matches!(
        link_decision(&one, 0.85),
        LinkDecision::Review { .. }
    ));
    let full = rank_candidates(
        "Karl Zwiebelhuber",
        &[(1, "Karl Zwiebelhuber".into(), 0.001)],
        0.85,
        0.7,
    );
    assert!(matches!(
        link_decision(&full, 0.85),
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
