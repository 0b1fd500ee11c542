//! Pipeline rules that each return a decision AND its reason, for the call trace: an
//! operator can always answer "why did X not happen for this call?" from the call view.
//! Every branch has its own human sentence; none is silent.

use super::phone::NumberStatus;

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Run(String),
    Skip(String),
}

impl Decision {
    pub fn reason(&self) -> &str {
        match self {
            Decision::Run(r) | Decision::Skip(r) => r,
        }
    }

    pub fn runs(&self) -> bool {
        matches!(self, Decision::Run(_))
    }
}

/// Should the QC agent run automatically on this call? `agent` = (agent name, the agent's
/// auto_qc flag, enabled). Checked from the broadest switch to the narrowest so the reason
/// names the switch an operator has to flip.
pub fn qc_decision(
    auto_qc_business: bool,
    agent: Option<(&str, bool, bool)>,
    transcript_chars: usize,
    min_chars: usize,
) -> Decision {
    let Some((name, agent_auto, enabled)) = agent else {
        return Decision::Skip("qc skipped: no QC agent configured for this business".into());
    };
    if !enabled {
        return Decision::Skip(format!("qc skipped: agent '{name}' is disabled"));
    }
    if !auto_qc_business {
        return Decision::Skip(format!(
            "qc skipped: auto_qc off for the business (agent '{name}')"
        ));
    }
    if !agent_auto {
        return Decision::Skip(format!("qc skipped: auto_qc off for agent '{name}'"));
    }
    // A hang-up after "Hallo?" has nothing to score; scoring it would only add noise.
    if transcript_chars < min_chars {
        return Decision::Skip(format!(
            "qc skipped: transcript has {transcript_chars} characters, fewer than {min_chars}"
        ));
    }
    Decision::Run(format!(
        "qc: auto_qc on for agent '{name}', transcript {transcript_chars} characters"
    ))
}

/// Create or update a CRM lead for this call? `forced_by` = an operator who asked for it
/// (overrides `auto_create_leads`); `existing_lead_call_count` = the lead already keyed to
/// this caller, if any. A withheld or malformed number does not stop the lead: it is then
/// keyed by the linked customer, and the notify stage says so if there is none.
pub fn lead_decision(
    auto_create_leads: bool,
    number: &NumberStatus,
    e164: Option<&str>,
    forced_by: Option<&str>,
    existing_lead_call_count: Option<i64>,
) -> Decision {
    let what = match existing_lead_call_count {
        Some(n) => format!("lead exists: call_count {n} → update"),
        None => "no lead yet → create".to_string(),
    };
    if let Some(by) = forced_by {
        return Decision::Run(format!("lead requested by {by}; {what}"));
    }
    if !auto_create_leads {
        return Decision::Skip("lead skipped: auto_create_leads off for the business".into());
    }
    let key = match (number, e164) {
        (NumberStatus::Valid, Some(p)) => format!("keyed by phone {p}"),
        (NumberStatus::Valid, None) => "number valid but not normalized, keyed by customer".into(),
        (NumberStatus::Withheld, _) => "withheld number, keyed by customer".into(),
        (NumberStatus::Malformed, _) => "malformed number, keyed by customer".into(),
    };
    Decision::Run(format!("{what} ({key})"))
}

/// The business's lead filter: when on, only callers whose number is already a known lead
/// are processed further. A withheld or malformed number can never be a known lead phone,
/// so the filter skips it, and the reason says that is why.
pub fn lead_filter_decision(
    lead_filter_on: bool,
    number: &NumberStatus,
    e164: Option<&str>,
    known_lead_phone: bool,
) -> Decision {
    if !lead_filter_on {
        return Decision::Run("lead filter off: every caller is processed".into());
    }
    match (number, e164) {
        (NumberStatus::Valid, Some(p)) if known_lead_phone => {
            Decision::Run(format!("lead filter on: {p} is a known lead phone"))
        }
        (NumberStatus::Valid, Some(p)) => Decision::Skip(format!(
            "lead filter on: {p} is not a known lead phone → call skipped"
        )),
        (status, _) => Decision::Skip(format!(
            "lead filter on: a {} number cannot match a lead phone → call skipped",
            status.as_str()
        )),
    }
}

/// Weight of an appointment intent in review priority (above any waiting time).
const APPOINTMENT_PRIORITY: i64 = 200;
/// Weight of a purchase intent in review priority (above any waiting time).
const PURCHASE_PRIORITY: i64 = 100;
/// Waiting time adds one point per hour, capped below the smallest intent step so that
/// intent always comes first.
const MAX_AGE_POINTS: i64 = 99;

/// Review priority, higher first: appointment intent, then purchase intent, then hours
/// waited. A caller who wants an appointment is a customer about to be lost if nobody
/// calls back; a long-waiting "no intent" call is not more urgent than that.
pub fn review_priority(
    has_appointment_intent: bool,
    has_purchase_intent: bool,
    age_ms: i64,
) -> i64 {
    let intent = if has_appointment_intent {
        APPOINTMENT_PRIORITY
    } else if has_purchase_intent {
        PURCHASE_PRIORITY
    } else {
        0
    };
    intent + (age_ms.max(0) / 3_600_000).min(MAX_AGE_POINTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qc_every_branch_has_its_reason() {
        let agent = Some(("Support DE", true, true));
        assert_eq!(
            qc_decision(true, Some(("Support DE", false, true)), 500, 40),
            Decision::Skip("qc skipped: auto_qc off for agent 'Support DE'".into())
        );
        assert_eq!(
            qc_decision(true, agent, 12, 40),
            Decision::Skip("qc skipped: transcript has 12 characters, fewer than 40".into())
        );
        assert_eq!(
            qc_decision(true, agent, 400, 40),
            Decision::Run(
                "qc: auto_qc on for agent 'Support DE', transcript 400 characters".into()
            )
        );
        assert!(qc_decision(true, None, 400, 40)
            .reason()
            .contains("no QC agent"));
        assert!(qc_decision(true, Some(("A", true, false)), 400, 40)
            .reason()
            .contains("disabled"));
        assert!(qc_decision(false, agent, 400, 40)
            .reason()
            .contains("off for the business"));
        // Exactly the minimum is enough.
        assert!(qc_decision(true, agent, 40, 40).runs());
    }

    #[test]
    fn lead_every_branch_has_its_reason() {
        let valid = NumberStatus::Valid;
        assert_eq!(
            lead_decision(false, &valid, Some("+4930"), None, None),
            Decision::Skip("lead skipped: auto_create_leads off for the business".into())
        );
        assert_eq!(
            lead_decision(true, &valid, Some("+49301234567"), None, Some(3)),
            Decision::Run(
                "lead exists: call_count 3 → update (keyed by phone +49301234567)".into()
            )
        );
        assert!(lead_decision(true, &valid, Some("+4930"), None, None)
            .reason()
            .starts_with("no lead yet → create"));
        let forced = lead_decision(false, &valid, None, Some("anna"), None);
        assert!(forced.runs() && forced.reason().contains("requested by anna"));
        for status in [NumberStatus::Withheld, NumberStatus::Malformed] {
            let d = lead_decision(true, &status, None, None, None);
            assert!(
                d.reason().contains(status.as_str()) && d.reason().contains("keyed by customer"),
                "{d:?}"
            );
        }
    }

    #[test]
    fn lead_filter_every_branch_has_its_reason() {
        let valid = NumberStatus::Valid;
        assert!(lead_filter_decision(false, &NumberStatus::Withheld, None, false).runs());
        assert!(lead_filter_decision(true, &valid, Some("+4930123"), true).runs());
        let unknown = lead_filter_decision(true, &valid, Some("+4930123"), false);
        assert_eq!(
            unknown,
            Decision::Skip(
                "lead filter on: +4930123 is not a known lead phone → call skipped".into()
            )
        );
        let withheld = lead_filter_decision(true, &NumberStatus::Withheld, None, false);
        assert!(
            !withheld.runs() && withheld.reason().contains("withheld number"),
            "{withheld:?}"
        );
    }

    #[test]
    fn intent_comes_before_waiting_time() {
        let week_ms = 7 * 24 * 3_600_000;
        assert!(review_priority(true, false, 0) > review_priority(false, true, week_ms));
        assert!(review_priority(false, true, 0) > review_priority(false, false, week_ms));
        assert!(review_priority(false, false, 2 * 3_600_000) > review_priority(false, false, 0));
        assert_eq!(
            review_priority(false, false, -5),
            0,
            "clock skew never goes negative"
        );
        assert_eq!(
            review_priority(true, true, i64::MAX),
            APPOINTMENT_PRIORITY + MAX_AGE_POINTS
        );
    }
}
