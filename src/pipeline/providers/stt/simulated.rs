//! Simulated STT: a realistic diarized transcript, deterministic per audio URL, whose
//! scenario the load generator encodes in the URL:
//! `sim://audio/<id>?lang=de&caller=<name>&scenario=named|surname_only|greeting_only|anonymous|appointment|purchase`.

use super::{SttProvider, SttRequest};
use crate::pipeline::providers::sim::{hash, SimSettings};
use crate::pipeline::providers::{ProviderError, Segment, Transcript};
use async_trait::async_trait;

pub struct SimulatedStt {
    pub sim: SimSettings,
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
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
        if b[i] == b'%' && i + 2 < b.len() {
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
        "sim://audio/{}?lang={lang}&caller={}&scenario={scenario}",
        enc(id),
        enc(caller.unwrap_or(""))
    )
}

fn param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    q.split('&').find_map(|kv| {
        kv.split_once('=')
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| dec(v))
    })
}

struct Lines {
    agent_greeting: &'static str,
    named: &'static str,
    greeting_only: &'static str,
    anonymous: &'static str,
    appointment: &'static str,
    purchase: &'static str,
    agent_ask: &'static str,
    close: &'static str,
}

fn lines(lang: &str) -> Lines {
    match lang {
        "de" => Lines {
            agent_greeting: "Guten Tag, Firma Müller Sanitär, mein Name ist Lena, was kann ich für Sie tun?",
            named: "Ja, hallo, hier ist {title}{name}.",
            greeting_only: "Guten Tag. Ja, hallo?",
            anonymous: "Ich hätte eine Frage zu meiner Rechnung.",
            appointment: "Ich hätte gern einen Termin nächste Woche.",
            purchase: "Ich möchte die neue Heizung kaufen, was kostet die?",
            agent_ask: "Darf ich fragen, mit wem ich spreche?",
            close: "Vielen Dank, auf Wiederhören.",
        },
        "hi" => Lines {
            agent_greeting: "Namaste, Sharma Motors se Asha baat kar rahi hoon, main aapki kya madad kar sakti hoon?",
            named: "Haan ji, mera naam {name} hai.",
            greeting_only: "Haan ji, namaste.",
            anonymous: "Mujhe service ke baare mein poochna tha.",
            appointment: "Mujhe test drive ka appointment chahiye.",
            purchase: "Main nayi car kharidna chahta hoon.",
            agent_ask: "Aapka naam kya hai?",
            close: "Dhanyavaad.",
        },
        "he" => Lines {
            agent_greeting: "שלום, מרפאת כהן, מדברת נועה, איך אפשר לעזור?",
            named: "שלום, קוראים לי {name}.",
            greeting_only: "שלום, כן.",
            anonymous: "רציתי לשאול על החשבון.",
            appointment: "אני צריך תור לשבוע הבא, appointment.",
            purchase: "אני רוצה לקנות את החבילה, purchase.",
            agent_ask: "מה השם בבקשה?",
            close: "תודה רבה.",
        },
        _ => Lines {
            agent_greeting: "Thanks for calling Acme, this is Sarah, how can I help you today?",
            named: "Hi, my name is {name}.",
            greeting_only: "Hello, yes speaking.",
            anonymous: "I have a question about my invoice.",
            appointment: "I'd like to book an appointment for next week.",
            purchase: "I want to buy the premium plan, what does it cost?",
            agent_ask: "May I have your name, please?",
            close: "Thank you, goodbye.",
        },
    }
}

/// The transcript a simulated call produces (also used by the simulated webhook records).
pub fn script(url: &str, duration_ms: i64) -> (String, Vec<Segment>) {
    let lang = param(url, "lang").unwrap_or_else(|| "en".into());
    let caller = param(url, "caller").filter(|c| !c.is_empty());
    let scenario = param(url, "scenario").unwrap_or_else(|| "named".into());
    let l = lines(&lang);
    let name_line = |name: &str| {
        let title = if lang == "de" && hash(&[name]).is_multiple_of(2) {
            "Frau "
        } else if lang == "de" {
            "Herr "
        } else {
            ""
        };
        let surname = if lang == "de" {
            name.split_whitespace().last().unwrap_or(name)
        } else {
            name
        };
        l.named.replace("{title}", title).replace("{name}", surname)
    };
    let mut talk: Vec<(&str, String)> = vec![("agent", l.agent_greeting.into())];
    match (scenario.as_str(), caller.as_deref()) {
        ("surname_only", Some(n)) => talk.push((
            "caller",
            format!("{}.", n.split_whitespace().last().unwrap_or(n)),
        )),
        ("greeting_only", _) | ("anonymous", _) | (_, None) => {
            talk.push(("caller", l.greeting_only.into()));
            talk.push(("agent", l.agent_ask.into()));
            talk.push(("caller", l.anonymous.into()));
        }
        (_, Some(n)) => talk.push(("caller", name_line(n))),
    }
    match scenario.as_str() {
        "appointment" => talk.push(("caller", l.appointment.into())),
        "purchase" => talk.push(("caller", l.purchase.into())),
        _ => talk.push(("caller", l.anonymous.into())),
    }
    talk.push(("agent", l.close.into()));
    let total = (duration_ms.max(10_000) as f64) / 1000.0;
    let step = total / talk.len() as f64;
    let segments: Vec<Segment> = talk
        .into_iter()
        .enumerate()
        .map(|(i, (sp, text))| Segment {
            speaker: sp.into(),
            start: (i as f64 * step * 100.0).round() / 100.0,
            end: (((i + 1) as f64 * step - 0.3) * 100.0).round() / 100.0,
            text,
        })
        .collect();
    let text = segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    (text, segments)
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
        Ok(Transcript {
            provider: "simulated".into(),
            language: param(&req.audio_url, "lang").or(req.language.clone()),
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
        assert!(text.contains("Schreiber"), "{text}");
        assert!(segs.iter().any(|s| s.speaker == "caller"));
        let (g, _) = script(&sim_audio_url("c-2", "en", None, "greeting_only"), 30_000);
        assert!(g.contains("yes speaking"));
    }
}
