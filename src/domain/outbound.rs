//! Outbound AI calls for new leads: which voice agent a lead's form maps to, and whether a
//! lead may be called now — each answer with its reason, for the lead's trace.

use super::hours::BusinessHours;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    Exact,
    Prefix,
    Keyword,
}

impl MatchKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Keyword => "keyword",
        }
    }
    pub fn parse(s: &str) -> Result<MatchKind, String> {
        match s.trim() {
            "exact" => Ok(MatchKind::Exact),
            "prefix" => Ok(MatchKind::Prefix),
            "keyword" => Ok(MatchKind::Keyword),
            other => Err(format!(
                "match kind {other:?} must be exact, prefix or keyword"
            )),
        }
    }
}

/// One mapping of a business: lead form/source/campaign pattern → voice agent.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingRule {
    pub id: i64,
    pub kind: MatchKind,
    pub pattern: String,
    pub voice_agent_id: i64,
}

fn fold(s: &str) -> String {
    s.trim().to_lowercase()
}

/// The rule for `form`: an exact match first, then the longest matching prefix, then the
/// longest keyword the form contains (case-insensitive, trimmed). Ties go to the older rule.
pub fn match_form<'a>(rules: &'a [MappingRule], form: &str) -> Option<&'a MappingRule> {
    let f = fold(form);
    if f.is_empty() {
        return None;
    }
    let best = |kind: MatchKind, hit: &dyn Fn(&str) -> bool| {
        rules
            .iter()
            .filter(|r| r.kind == kind && !fold(&r.pattern).is_empty() && hit(&fold(&r.pattern)))
            .min_by_key(|r| (std::cmp::Reverse(r.pattern.trim().len()), r.id))
    };
    best(MatchKind::Exact, &|p| p == f)
        .or_else(|| best(MatchKind::Prefix, &|p| f.starts_with(p)))
        .or_else(|| best(MatchKind::Keyword, &|p| f.contains(p)))
}

/// What the dispatcher knows about one due lead.
#[derive(Debug, Clone)]
pub struct DialFacts<'a> {
    pub auto_call: bool,
    /// An operator asked for this call (auto-call off does not stop it).
    pub requested_by_operator: bool,
    pub form: Option<&'a str>,
    pub rule: Option<&'a MappingRule>,
    /// The mapped agent: (name, active).
    pub agent: Option<(&'a str, bool)>,
    /// The lead's phone in E.164 when valid; otherwise why not.
    pub phone: Result<&'a str, &'a str>,
    pub hours: &'a BusinessHours,
    pub tz: Tz,
    pub tz_name: &'a str,
    pub now: DateTime<Utc>,
    /// 0 = unlimited.
    pub rate_per_hour: i64,
    /// Calls dialled in the hour before `now`, and the oldest of them.
    pub dialled_last_hour: i64,
    pub oldest_in_hour: Option<DateTime<Utc>>,
}

/// The dispatcher's decision for a due lead.
#[derive(Debug, Clone, PartialEq)]
pub enum DialDecision {
    Dial {
        reason: String,
    },
    /// Not called; `unmapped` rows can be called after a mapping is added.
    NotCalled {
        status: &'static str,
        reason: String,
    },
    /// Called later, at `at`.
    Later {
        at: DateTime<Utc>,
        reason: String,
    },
}

fn shown(t: DateTime<Utc>, tz: Tz, tz_name: &str) -> String {
    format!(
        "{} {tz_name} ({})",
        t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M"),
        t.format("%H:%M UTC")
    )
}

pub fn dial_decision(f: &DialFacts<'_>) -> DialDecision {
    if !f.auto_call && !f.requested_by_operator {
        return DialDecision::NotCalled {
            status: "skipped",
            reason: "not called: auto-call is off for this business".into(),
        };
    }
    let form = f.form.unwrap_or("");
    let Some(rule) = f.rule else {
        return DialDecision::NotCalled {
            status: "unmapped",
            reason: if form.trim().is_empty() {
                "not called: the lead has no form/source/campaign to map to a voice agent".into()
            } else {
                format!("not called: no mapping for form {form:?} (add one: callops mappings add)")
            },
        };
    };
    let Some((agent, active)) = f.agent else {
        return DialDecision::NotCalled {
            status: "unmapped",
            reason: format!(
                "not called: mapping #{} for form {form:?} names voice agent #{} which does not exist",
                rule.id, rule.voice_agent_id
            ),
        };
    };
    if !active {
        return DialDecision::NotCalled {
            status: "skipped",
            reason: format!(
                "not called: voice agent {agent:?} (mapped from form {form:?}) is inactive"
            ),
        };
    }
    let phone = match f.phone {
        Ok(p) => p,
        Err(why) => {
            return DialDecision::NotCalled {
                status: "skipped",
                reason: format!("not called: invalid or withheld phone ({why})"),
            }
        }
    };
    match f.hours.next_opening(f.tz, f.now) {
        Some(at) if at == f.now => {}
        Some(at) => {
            return DialDecision::Later {
                at,
                reason: format!(
                    "outside business hours: scheduled for the next opening, {}",
                    shown(at, f.tz, f.tz_name)
                ),
            }
        }
        None => {
            return DialDecision::NotCalled {
                status: "skipped",
                reason: "not called: the business hours have no open window".into(),
            }
        }
    }
    if f.rate_per_hour > 0 && f.dialled_last_hour >= f.rate_per_hour {
        let at = f
            .oldest_in_hour
            .map(|o| o + chrono::Duration::hours(1))
            .filter(|a| *a > f.now)
            .unwrap_or(f.now + chrono::Duration::minutes(1));
        return DialDecision::Later {
            at,
            reason: format!(
                "rate limited: {} calls in the last hour (limit {}/h); retrying at {}",
                f.dialled_last_hour,
                f.rate_per_hour,
                shown(at, f.tz, f.tz_name)
            ),
        };
    }
    DialDecision::Dial {
        reason: format!(
            "calling {phone} with voice agent {agent:?} (form {form:?} → mapping #{} {} {:?})",
            rule.id,
            rule.kind.as_str(),
            rule.pattern
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, kind: MatchKind, p: &str) -> MappingRule {
        MappingRule {
            id,
            kind,
            pattern: p.into(),
            voice_agent_id: id * 10,
        }
    }

    #[test]
    fn exact_then_longest_prefix_then_keyword() {
        let rules = vec![
            rule(1, MatchKind::Keyword, "yamuna"),
            rule(2, MatchKind::Prefix, "Gaur"),
            rule(3, MatchKind::Prefix, "Gaur Yamuna"),
            rule(4, MatchKind::Exact, "Gaur Yamuna Expressway"),
        ];
        assert_eq!(
            match_form(&rules, " gaur yamuna expressway ").unwrap().id,
            4
        );
        assert_eq!(match_form(&rules, "Gaur Yamuna City").unwrap().id, 3);
        assert_eq!(match_form(&rules, "Gaur City").unwrap().id, 2);
        assert_eq!(match_form(&rules, "New Yamuna Towers").unwrap().id, 1);
        assert!(match_form(&rules, "Sunrise Villas").is_none());
        assert!(match_form(&rules, "").is_none());
    }

    fn facts<'a>(h: &'a BusinessHours, rules: &'a [MappingRule]) -> DialFacts<'a> {
        DialFacts {
            auto_call: true,
            requested_by_operator: false,
            form: Some("spring-promo"),
            rule: rules.first(),
            agent: Some(("Maya", true)),
            phone: Ok("+4930123456"),
            hours: h,
            tz: chrono_tz::UTC,
            tz_name: "UTC",
            now: DateTime::parse_from_rfc3339("2026-12-03T10:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
            rate_per_hour: 0,
            dialled_last_hour: 0,
            oldest_in_hour: None,
        }
    }

    #[test]
    fn every_reason_not_to_call() {
        let always = BusinessHours::always_open();
        let rules = vec![rule(1, MatchKind::Exact, "spring-promo")];
        assert!(matches!(
            dial_decision(&facts(&always, &rules)),
            DialDecision::Dial { .. }
        ));

        let mut f = facts(&always, &rules);
        f.auto_call = false;
        assert!(
            matches!(dial_decision(&f), DialDecision::NotCalled { reason, .. } if reason.contains("auto-call is off"))
        );
        f.requested_by_operator = true;
        assert!(matches!(dial_decision(&f), DialDecision::Dial { .. }));

        let mut f = facts(&always, &[]);
        f.rule = None;
        assert!(
            matches!(dial_decision(&f), DialDecision::NotCalled { status: "unmapped", reason } if reason.contains("no mapping for form \"spring-promo\""))
        );

        let mut f = facts(&always, &rules);
        f.agent = Some(("Maya", false));
        assert!(
            matches!(dial_decision(&f), DialDecision::NotCalled { reason, .. } if reason.contains("inactive"))
        );

        let mut f = facts(&always, &rules);
        f.phone = Err("withheld: anonymous");
        assert!(
            matches!(dial_decision(&f), DialDecision::NotCalled { reason, .. } if reason.contains("invalid or withheld phone"))
        );

        let night = BusinessHours::parse("mon-fri 12:00-13:00").unwrap();
        let f = facts(&night, &rules);
        match dial_decision(&f) {
            DialDecision::Later { at, reason } => {
                assert_eq!(at.to_rfc3339(), "2026-12-03T12:00:00+00:00");
                assert!(
                    reason.contains("outside business hours") && reason.contains("12:00"),
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }

        let mut f = facts(&always, &rules);
        f.rate_per_hour = 2;
        f.dialled_last_hour = 2;
        f.oldest_in_hour = Some(f.now - chrono::Duration::minutes(45));
        match dial_decision(&f) {
            DialDecision::Later { at, reason } => {
                assert_eq!(at, f.now + chrono::Duration::minutes(15));
                assert!(reason.contains("rate limited"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}
