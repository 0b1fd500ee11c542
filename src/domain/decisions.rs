//! Pipeline rules that each return a decision AND its reason, for the call trace: an
//! operator can always answer "why did X not happen for this call?".

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

/// Should the QC agent run on this call? `agent` = (name, agent's auto_qc, enabled).
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
    if transcript_chars < min_chars {
        return Decision::Skip(format!(
            "qc skipped: transcript has {transcript_chars} characters, fewer than {min_chars}"
        ));
    }
    Decision::Run(format!(
        "qc: auto_qc on for agent '{name}', transcript {transcript_chars} characters"
    ))
}

/// Create/update a lead for this call? `forced_by` = an operator who asked for it.
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
        (NumberStatus::Valid, Some(p)) => format!("phone {p}"),
        (NumberStatus::Withheld, _) => "withheld number, keyed by customer".into(),
        _ => "malformed number, keyed by customer".into(),
    };
    Decision::Run(format!("{what} ({key})"))
}

/// Review priority: appointment and purchase intent first, then waiting time (hours).
pub fn review_priority(
    has_appointment_intent: bool,
    has_purchase_intent: bool,
    age_ms: i64,
) -> i64 {
    let intent = if has_appointment_intent {
        200
    } else if has_purchase_intent {
        100
    } else {
        0
    };
    intent + (age_ms.max(0) / 3_600_000).min(99)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_branch_has_a_reason() {
        assert_eq!(
            qc_decision(true, Some(("Support DE", false, true)), 500, 40),
            Decision::Skip("qc skipped: auto_qc off for agent 'Support DE'".into())
        );
        assert!(qc_decision(true, Some(("A", true, true)), 12, 40)
            .reason()
            .contains("12 characters"));
        assert!(qc_decision(true, Some(("A", true, true)), 400, 40).runs());
        assert!(qc_decision(true, None, 400, 40)
            .reason()
            .contains("no QC agent"));
        assert!(
            lead_decision(false, &NumberStatus::Valid, Some("+49"), None, None)
                .reason()
                .contains("auto_create_leads off")
        );
        assert!(
            lead_decision(true, &NumberStatus::Valid, Some("+4930"), None, Some(3))
                .reason()
                .contains("call_count 3")
        );
        assert!(lead_decision(false, &NumberStatus::Valid, None, Some("anna"), None).runs());
        assert!(review_priority(true, false, 0) > review_priority(false, true, 10 * 3_600_000));
    }
}
