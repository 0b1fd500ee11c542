//! Pipeline stages and the call state machine. Pure rules: the store enforces them.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Sync,
    Transcribe,
    Analyze,
    Link,
    Notify,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Sync,
        Stage::Transcribe,
        Stage::Analyze,
        Stage::Link,
        Stage::Notify,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Sync => "sync",
            Stage::Transcribe => "transcribe",
            Stage::Analyze => "analyze",
            Stage::Link => "link",
            Stage::Notify => "notify",
        }
    }

    /// The stage after this one; `None` after notify.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Sync => Some(Stage::Transcribe),
            Stage::Transcribe => Some(Stage::Analyze),
            Stage::Analyze => Some(Stage::Link),
            Stage::Link => Some(Stage::Notify),
            Stage::Notify => None,
        }
    }

    /// Queue (and routing key) of this stage for one business: `transcribe.42`.
    pub fn queue_for(self, business_id: i64) -> String {
        format!("{}.{}", self.as_str(), business_id)
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown stage {s:?}: expected one of sync, transcribe, analyze, link, notify"
                )
            })
    }
}

/// Where a call is within its current stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Waiting in the stage's queue.
    Pending,
    /// A worker holds it.
    Running,
    /// Failed; a delayed retry is queued.
    Retrying,
    /// Waiting for a person in the manual-review queue (link stage only).
    Review,
    /// Went through the whole pipeline (or was stopped by a rule, with a reason).
    Done,
    /// Out of attempts; its job is in `dead_jobs`.
    Dead,
}

impl CallState {
    pub const ALL: [CallState; 6] = [
        CallState::Pending,
        CallState::Running,
        CallState::Retrying,
        CallState::Review,
        CallState::Done,
        CallState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::Running => "running",
            CallState::Retrying => "retrying",
            CallState::Review => "review",
            CallState::Done => "done",
            CallState::Dead => "dead",
        }
    }

    /// States a call can sit in without anyone moving it forward automatically.
    pub fn is_terminal(self) -> bool {
        matches!(self, CallState::Done | CallState::Dead)
    }

    /// States the pipeline is still working on (candidates for "stuck").
    pub fn is_in_flight(self) -> bool {
        matches!(
            self,
            CallState::Pending | CallState::Running | CallState::Retrying
        )
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CallState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown call state {s:?}"))
    }
}

/// A call's position: stage and state within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position {
    pub stage: Stage,
    pub state: CallState,
}

impl Position {
    pub fn new(stage: Stage, state: CallState) -> Self {
        Position { stage, state }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.stage, self.state)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("illegal transition for call {call_id}: {from} -> {to} ({why})")]
pub struct IllegalTransition {
    pub call_id: i64,
    pub from: Position,
    pub to: Position,
    pub why: &'static str,
}

/// The call state machine. Returns why a move is illegal, or `Ok` when it is allowed.
///
/// Same-position moves are allowed where a redelivered job re-enters a state
/// (`running -> running` after a worker crash) so idempotent handlers never trip on them.
pub fn check_transition(
    call_id: i64,
    from: Position,
    to: Position,
) -> Result<(), IllegalTransition> {
    use CallState::*;
    let err = |why| {
        Err(IllegalTransition {
            call_id,
            from,
            to,
            why,
        })
    };
    let same_stage = from.stage == to.stage;
    let next_stage = from.stage.next() == Some(to.stage);
    match (from.state, to.state) {
        (Pending, Pending) | (Pending, Running) | (Retrying, Running) | (Running, Running)
            if same_stage =>
        {
            Ok(())
        }
        (Running, Retrying) | (Running, Dead) | (Retrying, Dead) | (Pending, Dead)
            if same_stage =>
        {
            Ok(())
        }
        // Success: on to the next stage's queue, or finished after notify.
        (Running, Pending) if next_stage => Ok(()),
        (Running, Done) => Ok(()), // done early is allowed: a rule stopped the call, with a reason in its trace
        (Running, Review) if from.stage == Stage::Link && same_stage => Ok(()),
        // Manual review: linked (on to notify), deferred (stays), or closed.
        (Review, Pending) if to.stage == Stage::Notify || to.stage == Stage::Link => Ok(()),
        (Review, Review) if same_stage => Ok(()),
        (Review, Done) => Ok(()),
        // Operator actions: retry a dead call's stage; re-run QC or notify on a finished call.
        (Dead, Pending) if same_stage => Ok(()),
        (Done, Pending) if matches!(to.stage, Stage::Analyze | Stage::Notify) => Ok(()),
        (Done, Done) if same_stage => Ok(()),
        // Operator unlink: a linked call (past link, not running) goes back to review.
        (Pending | Retrying | Dead | Done, Review)
            if from.stage == Stage::Notify && to.stage == Stage::Link =>
        {
            Ok(())
        }
        (Done, _) => err("a finished call only goes back to analyze (QC) or notify (lead)"),
        (Dead, _) => err("a dead call can only be retried at the stage it died in"),
        (_, Review) => err("only the link stage sends calls to review"),
        _ if !same_stage && !next_stage => {
            err("stages run in order: sync, transcribe, analyze, link, notify")
        }
        _ => err("not a move the pipeline makes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CallState::*;
    use Stage::*;

    fn p(s: Stage, st: CallState) -> Position {
        Position::new(s, st)
    }

    #[test]
    fn happy_path_is_legal() {
        let path = [
            p(Sync, Pending),
            p(Sync, Running),
            p(Transcribe, Pending),
            p(Transcribe, Running),
            p(Analyze, Pending),
            p(Analyze, Running),
            p(Link, Pending),
            p(Link, Running),
            p(Notify, Pending),
            p(Notify, Running),
            p(Notify, Done),
        ];
        for w in path.windows(2) {
            check_transition(1, w[0], w[1]).unwrap();
        }
    }

    #[test]
    fn skipping_a_stage_is_illegal_and_says_so() {
        let e = check_transition(7, p(Sync, Running), p(Analyze, Pending)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("call 7"), "{msg}");
        assert!(msg.contains("sync/running"), "{msg}");
        assert!(msg.contains("analyze/pending"), "{msg}");
    }

    #[test]
    fn done_is_terminal_except_for_operator_reruns() {
        assert!(check_transition(1, p(Notify, Done), p(Transcribe, Pending)).is_err());
        assert!(check_transition(1, p(Notify, Done), p(Analyze, Pending)).is_ok());
        assert!(check_transition(1, p(Notify, Done), p(Notify, Pending)).is_ok());
        assert!(check_transition(1, p(Analyze, Dead), p(Analyze, Pending)).is_ok());
        assert!(check_transition(1, p(Analyze, Dead), p(Link, Pending)).is_err());
    }

    #[test]
    fn only_link_reviews() {
        assert!(check_transition(1, p(Link, Running), p(Link, Review)).is_ok());
        assert!(check_transition(1, p(Analyze, Running), p(Analyze, Review)).is_err());
    }

    #[test]
    fn stage_round_trips_through_text() {
        for s in Stage::ALL {
            assert_eq!(s.as_str().parse::<Stage>().unwrap(), s);
        }
        assert!("transcribing".parse::<Stage>().is_err());
    }
}
