//! Simulated STT: a realistic diarized call, deterministic per audio URL, whose content the
//! load generator encodes in the URL:
//! `sim://audio/<id>?lang=de|en|hi|he&caller=<name>&scenario=<scenario>` with scenarios
//!
//! - `named`: the caller gives their name with a cue phrase ("hier ist Frau Schreiber",
//!   "my name is …", "mera naam … hai", "קוראים לי …");
//! - `surname_only`: the caller answers with their surname alone ("Müller."), as Germans do;
//! - `greeting_only`: the caller only greets ("Guten Tag.", "Hello, yes speaking.",
//!   "Haan ji, namaste.", "שלום, כן.") — greetings that must not be taken for names;
//! - `anonymous`: the caller never says a name and declines when asked;
//! - `appointment` / `purchase`: named, and wants an appointment / to buy.
//!
//! The agent always introduces themselves by name first ("… mein Name ist Lena …"), so
//! name extraction is tested on not taking the agent's name. Missing or unknown parameters
//! fall back to English and to `named` when a caller name is given, `anonymous` otherwise.

use super::{SttProvider, SttRequest};
use crate::pipeline::providers::sim::{hash, SimSettings};
use crate::pipeline::providers::{ProviderError, Segment, Transcript};
use async_trait::async_trait;

pub struct SimulatedStt {
    pub sim: SimSettings,
}

pub const SCENARIOS: &[&str] = &[
    "named",
    "surname_only",
    "greeting_only",
    "anonymous",
    "appointment",
    "purchase",
];
pub const LANGUAGES: &[&str] = &["de", "en", "hi", "he"];

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // Only two ASCII hex digits make an escape: slicing `s` at a byte offset inside
        // a multi-byte character would panic.
        if b[i] == b'%'
            && i + 2 < b.len()
            && b[i + 1].is_ascii_hexdigit()
            && b[i + 2].is_ascii_hexdigit()
        {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The URL the load generator puts on a simulated call.
pub fn sim_audio_url(id: &str, lang: &str, caller: Option<&str>, scenario: &str) -> String {
    format!(
        "sim://audio/{}?lang={}&caller={}&scenario={}",
        enc(id),
        enc(lang),
        enc(caller.unwrap_or("")),
        enc(scenario)
    )
}

fn param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    let q = q.split('#').next().unwrap_or(q);
    q.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| dec(v))
    })
}

/// What a simulated URL asks for, with the defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct SimCall {
    pub lang: &'static str,
    pub caller: Option<String>,
    pub scenario: &'static str,
}

pub fn parse_sim_url(url: &str) -> SimCall {
    let lang = param(url, "lang")
        .map(|l| l.trim().to_ascii_lowercase())
        .and_then(|l| {
            let short = l.split(['-', '_']).next().unwrap_or("").to_string();
            LANGUAGES.iter().find(|x| **x == short).copied()
        })
        .unwrap_or("en");
    let caller = param(url, "caller")
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let scenario = param(url, "scenario")
        .map(|s| s.trim().to_ascii_lowercase())
        .and_then(|s| SCENARIOS.iter().find(|x| **x == s).copied())
        .unwrap_or(if caller.is_some() {
            "named"
        } else {
            "anonymous"
        });
    SimCall {
        lang,
        caller,
        scenario,
    }
}

struct Lines {
    agent_greetings: [&'static str; 2],
    /// `{name}`; German adds a title before the surname.
    named: &'static str,
    greeting_only: &'static str,
    greeting_again: &'static str,
    agent_ask: &'static str,
    declines: &'static str,
    question: &'static str,
    complaint: &'static str,
    appointment: &'static str,
    purchase: &'static str,
    agent_answer: &'static str,
    agent_slot: &'static str,
    caller_confirms: &'static str,
    agent_offer: &'static str,
    /// (agent, caller) small talk for longer calls: no names, no intents.
    fillers: [(&'static str, &'static str); 3],
    close: &'static str,
    caller_bye: &'static str,
}

fn lines(lang: &str) -> Lines {
    match lang {
        "de" => Lines {
            agent_greetings: [
                "Guten Tag, Firma Müller Sanitär, mein Name ist Lena, was kann ich für Sie tun?",
                "Autohaus Becker, Sie sprechen mit Tom, guten Tag!",
            ],
            named: "Ja, hallo, hier ist {name}.",
            greeting_only: "Guten Tag.",
            greeting_again: "Ja, hallo?",
            agent_ask: "Darf ich fragen, mit wem ich spreche?",
            declines: "Das möchte ich lieber nicht sagen.",
            question: "Ich wollte fragen, ob Sie auch samstags geöffnet haben.",
            complaint: "Ich hätte eine Frage zu meiner Rechnung.",
            appointment: "Ich hätte gern einen Termin nächste Woche.",
            purchase: "Ich möchte die neue Heizung kaufen, was kostet die?",
            agent_answer: "Gern, das kläre ich für Sie.",
            agent_slot: "Da hätte ich Dienstag um zehn Uhr frei.",
            caller_confirms: "Ja, das passt gut.",
            agent_offer: "Die kostet viertausendneunhundert Euro, ich schicke Ihnen ein Angebot.",
            fillers: [
                ("Einen Moment bitte, ich schaue nach.", "Ja, gern."),
                ("Sind Sie noch dran?", "Ja, ich bin noch da."),
                ("Um welche Adresse geht es?", "Um die Lindenstraße zwölf."),
            ],
            close: "Vielen Dank, auf Wiederhören.",
            caller_bye: "Danke, tschüss.",
        },
        "hi" => Lines {
            agent_greetings: [
                "Namaste, Sharma Motors se Asha baat kar rahi hoon, main aapki kya madad kar sakti hoon?",
                "Namaskar, Gupta Electronics, main Ravi bol raha hoon.",
            ],
            named: "Haan ji, mera naam {name} hai.",
            greeting_only: "Haan ji, namaste.",
            greeting_again: "Haan ji.",
            agent_ask: "Aapka naam kya hai?",
            declines: "Woh zaroori nahi hai.",
            question: "Aapka showroom kitne baje khulta hai?",
            complaint: "Mujhe service ke baare mein poochna tha.",
            appointment: "Mujhe test drive ka appointment chahiye.",
            purchase: "Main nayi car kharidna chahta hoon.",
            agent_answer: "Ji, main abhi batati hoon.",
            agent_slot: "Kal subah das baje ka slot khaali hai.",
            caller_confirms: "Theek hai, chalega.",
            agent_offer: "Uski keemat saat lakh hai, main aapko quotation bhejti hoon.",
            fillers: [
                ("Ek minute, main check karti hoon.", "Theek hai."),
                ("Aap line par hain?", "Haan, main hoon."),
                ("Aap kis shehar se bol rahe hain?", "Pune se."),
            ],
            close: "Dhanyavaad.",
            caller_bye: "Shukriya.",
        },
        "he" => Lines {
            agent_greetings: [
                "שלום, מרפאת כהן, מדברת נועה, איך אפשר לעזור?",
                "חברת אור תקשורת, שלום, כאן דני.",
            ],
            named: "שלום, קוראים לי {name}.",
            greeting_only: "שלום, כן.",
            greeting_again: "כן, שלום.",
            agent_ask: "מה השם בבקשה?",
            declines: "אני מעדיף לא להגיד.",
            question: "רציתי לשאול על שעות הפתיחה.",
            complaint: "רציתי לשאול על החשבון.",
            appointment: "אני צריך תור לשבוע הבא.",
            purchase: "אני רוצה לקנות את החבילה.",
            agent_answer: "בשמחה, אני בודקת.",
            agent_slot: "יש תור ביום שלישי בעשר.",
            caller_confirms: "כן, זה מתאים.",
            agent_offer: "החבילה עולה מאתיים שקל לחודש, אני שולחת הצעה.",
            fillers: [
                ("רגע אחד, אני בודקת.", "בסדר."),
                ("אתה עדיין על הקו?", "כן, אני כאן."),
                ("מאיזו עיר אתה?", "מחיפה."),
            ],
            close: "תודה רבה, יום טוב.",
            caller_bye: "תודה, להתראות.",
        },
        _ => Lines {
            agent_greetings: [
                "Thanks for calling Acme, this is Sarah, how can I help you today?",
                "Good morning, Bright Dental, you're speaking with Mike.",
            ],
            named: "Hi, my name is {name}.",
            greeting_only: "Hello, yes speaking.",
            greeting_again: "Hi, hello?",
            agent_ask: "May I have your name, please?",
            declines: "I'd rather not say.",
            question: "I wanted to ask about your opening hours.",
            complaint: "I have a question about my invoice.",
            appointment: "I'd like to book an appointment for next week.",
            purchase: "I want to buy the premium plan, what does it cost?",
            agent_answer: "Sure, let me look into that for you.",
            agent_slot: "I have Tuesday at ten o'clock available.",
            caller_confirms: "Yes, that works for me.",
            agent_offer: "It's forty-nine dollars a month, I'll send you the details.",
            fillers: [
                ("One moment, let me check that for you.", "Sure, no rush."),
                ("Are you still there?", "Yes, still here."),
                ("And what's the address?", "It's twelve Linden Street."),
            ],
            close: "Thank you, goodbye.",
            caller_bye: "Thanks, bye.",
        },
    }
}

/// "Frau"/"Herr" for a German caller: from a typical female first-name ending when there
/// is a first name, else a stable coin flip.
fn german_title(name: &str) -> &'static str {
    let parts: Vec<&str> = name.split_whitespace().collect();
    let female = match parts.as_slice() {
        [first, _, ..] => {
            let f = first.to_lowercase();
            f.ends_with('a')
                || f.ends_with('e')
                || ["ingrid", "gertrud", "karin", "doris", "ruth", "birgit"].contains(&f.as_str())
        }
        _ => hash(&[name]).is_multiple_of(2),
    };
    if female {
        "Frau"
    } else {
        "Herr"
    }
}

fn surname(name: &str) -> &str {
    name.split_whitespace().last().unwrap_or(name)
}

/// The transcript a simulated call produces (also used for simulated call records).
/// Segment timings fit in `duration_ms` (a 60 s call when it is unknown).
pub fn script(url: &str, duration_ms: i64) -> (String, Vec<Segment>) {
    let call = parse_sim_url(url);
    let l = lines(call.lang);
    let h = hash(&[url]);
    let mut talk: Vec<(&str, String)> =
        vec![("agent", l.agent_greetings[(h % 2) as usize].to_string())];
    let name_line = |name: &str| {
        let said = if call.lang == "de" {
            format!("{} {}", german_title(name), surname(name))
        } else {
            name.to_string()
        };
        l.named.replace("{name}", &said)
    };
    let greeting_path = |talk: &mut Vec<(&str, String)>| {
        talk.push(("caller", l.greeting_only.into()));
        talk.push(("agent", l.agent_ask.into()));
        talk.push(("caller", l.greeting_again.into()));
    };
    match (call.scenario, call.caller.as_deref()) {
        ("anonymous", _) => {}
        ("greeting_only", _) | (_, None) => greeting_path(&mut talk),
        ("surname_only", Some(n)) => talk.push(("caller", format!("{}.", surname(n)))),
        (_, Some(n)) => talk.push(("caller", name_line(n))),
    }
    match call.scenario {
        "appointment" => {
            talk.push(("caller", l.appointment.into()));
            talk.push(("agent", l.agent_slot.into()));
            talk.push(("caller", l.caller_confirms.into()));
        }
        "purchase" => {
            talk.push(("caller", l.purchase.into()));
            talk.push(("agent", l.agent_offer.into()));
            talk.push(("caller", l.caller_confirms.into()));
        }
        "anonymous" => {
            talk.push(("caller", l.complaint.into()));
            talk.push(("agent", l.agent_ask.into()));
            talk.push(("caller", l.declines.into()));
            talk.push(("agent", l.agent_answer.into()));
        }
        _ => {
            talk.push(("caller", l.question.into()));
            talk.push(("agent", l.agent_answer.into()));
        }
    }
    // Longer calls have more back and forth (one exchange per 30 s beyond 40 s, ≤ 3).
    let seconds = if duration_ms > 0 {
        duration_ms as f64 / 1000.0
    } else {
        60.0
    };
    let fillers = (((seconds - 40.0) / 30.0).floor().max(0.0) as usize).min(l.fillers.len());
    for i in 0..fillers {
        let (a, c) = l.fillers[(i + (h >> 8) as usize) % l.fillers.len()];
        talk.push(("agent", a.into()));
        talk.push(("caller", c.into()));
    }
    talk.push(("agent", l.close.into()));
    talk.push(("caller", l.caller_bye.into()));
    let segments = timed(talk, seconds);
    let text = segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (text, segments)
}

/// Spread the turns over the call: each takes time in proportion to its length, with
/// short pauses between turns, all within `seconds`.
fn timed(talk: Vec<(&str, String)>, seconds: f64) -> Vec<Segment> {
    let n = talk.len() as f64;
    let lead_in = (seconds * 0.02).min(0.5);
    let gap = (seconds * 0.2 / n).min(0.4);
    let speaking = (seconds - lead_in - gap * (n - 1.0)).max(0.0);
    let weights: Vec<f64> = talk
        .iter()
        .map(|(_, t)| t.chars().count().max(8) as f64)
        .collect();
    let total: f64 = weights.iter().sum();
    let round = |x: f64| (x * 100.0).floor() / 100.0;
    let mut cursor = lead_in;
    talk.into_iter()
        .zip(weights)
        .map(|((speaker, text), w)| {
            let start = cursor;
            let end = (start + speaking * w / total).min(seconds);
            cursor = end + gap;
            Segment {
                speaker: speaker.into(),
                start: round(start),
                end: round(end),
                text,
            }
        })
        .collect()
}

#[async_trait]
impl SttProvider for SimulatedStt {
    fn name(&self) -> &str {
        "simulated"
    }

    async fn transcribe(&self, req: &SttRequest) -> Result<Transcript, ProviderError> {
        let key = hash(&[&req.audio_url]);
        self.sim.wait(key).await;
        if let Some(e) = self.sim.failure("simulated-stt", key) {
            return Err(e);
        }
        let (text, segments) = script(&req.audio_url, req.duration_ms);
        let lang = if param(&req.audio_url, "lang").is_some() {
            Some(parse_sim_url(&req.audio_url).lang.to_string())
        } else {
            req.language.clone()
        };
        Ok(Transcript {
            provider: "simulated".into(),
            language: lang,
            text,
            segments,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_round_trips_and_script_is_deterministic() {
        let u = sim_audio_url("c-1", "de", Some("Anna Schreiber"), "named");
        assert_eq!(param(&u, "caller").as_deref(), Some("Anna Schreiber"));
        assert_eq!(script(&u, 60_000), script(&u, 60_000));
        let (text, segs) = script(&u, 60_000);
        assert!(text.contains("hier ist Frau Schreiber"), "{text}");
        assert!(segs.iter().any(|s| s.speaker == "caller"));
        let (g, _) = script(&sim_audio_url("c-2", "en", None, "greeting_only"), 30_000);
        assert!(g.contains("yes speaking"));
    }

    #[test]
    fn timings_fit_the_call() {
        for ms in [3_000, 20_000, 61_000, 300_000, 0] {
            let (_, segs) = script(&sim_audio_url("t", "he", Some("נועה לוי"), "purchase"), ms);
            let limit = if ms > 0 { ms as f64 / 1000.0 } else { 60.0 };
            let mut last = 0.0;
            for s in &segs {
                assert!(
                    s.start >= last && s.end >= s.start && s.end <= limit,
                    "{ms}: {segs:?}"
                );
                last = s.end;
            }
        }
    }

    #[test]
    fn defaults_for_missing_and_unknown_params() {
        assert_eq!(
            parse_sim_url("sim://audio/x"),
            SimCall {
                lang: "en",
                caller: None,
                scenario: "anonymous"
            }
        );
        let c = parse_sim_url("sim://audio/x?lang=de-AT&caller=Max+M%C3%BCller&scenario=weird");
        assert_eq!((c.lang, c.scenario), ("de", "named"));
        assert_eq!(c.caller.as_deref(), Some("Max Müller"));
        // A broken escape at the end is kept as text, not a panic.
        assert_eq!(dec("a%2"), "a%2");
        assert_eq!(dec("%ü1"), "%ü1");
    }
}
