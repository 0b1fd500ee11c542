//! The review queue as the console and `callops review list` page it: searched, sorted and
//! counted by the database (not over a fetched page), deferred items kept apart until they
//! are due, and one unreadable row shown as such instead of failing the whole page.

use super::super::calls::{row_to_call, Call, CALL_COLUMNS};
use super::super::{col, Ctx, Result, Store};
use crate::domain::stage::{CallState, Stage};
use serde::Serialize;
use std::collections::HashMap;

/// Review sorts, in the order `s` cycles through them.
pub const REVIEW_SORTS: &[&str] = &["priority", "waiting", "business"];

/// What the review list asks for: the operator's search words, deferred or not, the sort
/// and the page. Words must all match (call id, heard name, number, reason, business name).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewQuery {
    pub text: String,
    /// Only items deferred and not yet due (instead of the default: only items due).
    pub deferred: bool,
    pub sort: usize,
    pub reverse: bool,
    pub offset: i64,
}

/// One row of the review list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewItem {
    pub call: Call,
    /// Why the row could not be read in full (the rest of the list still shows).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corrupt: Option<String>,
    pub deferred_until: Option<i64>,
    pub deferred_reason: Option<String>,
}

/// What distinguishes a candidate customer from another with the same name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CandidateDetail {
    pub id: i64,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    /// The customer's reference in the CRM (external id).
    pub reference: Option<String>,
    pub is_temporary: bool,
    /// Their calls, and when the last one started.
    pub calls: i64,
    pub last_call_at: Option<i64>,
}

/// One page of the review queue and the true counts behind it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReviewPage {
    pub rows: Vec<ReviewItem>,
    /// Rows matching the query in all (not only this page).
    pub total: i64,
    /// Items deferred and not yet due (whatever the query), so the default list can say
    /// how many it leaves out.
    pub deferred_total: i64,
    /// The query this page answers.
    pub query: ReviewQuery,
    /// The candidates of the rows on this page.
    pub customers: HashMap<i64, CandidateDetail>,
    /// Business id → its auto-link threshold (linking below it asks for confirmation).
    pub link_thresholds: HashMap<i64, f64>,
}

/// Candidate customer ids in a call's `review_candidates` JSON.
pub fn candidate_ids(c: &Call) -> Vec<i64> {
    c.review_candidates
        .as_deref()
        .and_then(|j| serde_json::from_str::<Vec<serde_json::Value>>(j).ok())
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v["customer_id"].as_i64())
        .collect()
}

/// A call row whose columns do not all decode (an unknown stage, a bad number): what could
/// be read, and why the rest could not.
fn corrupt_call(r: &sqlx::any::AnyRow, why: String) -> ReviewItem {
    let text = |name: &str| col::<Option<String>>(r, name).ok().flatten();
    let int = |name: &str| col::<Option<i64>>(r, name).ok().flatten();
    ReviewItem {
        call: Call {
            id: int("id").unwrap_or(0),
            business_id: int("business_id").unwrap_or(0),
            external_id: text("external_id").unwrap_or_default(),
            direction: text("direction").unwrap_or_default(),
            from_number: text("from_number"),
            from_e164: text("from_e164"),
            number_status: text("number_status"),
            to_number: None,
            agent_name: text("agent_name"),
            campaign: None,
            language: None,
            started_at: int("started_at"),
            duration_ms: 0,
            audio_url: None,
            stage: Stage::Link,
            state: CallState::Review,
            state_since: int("state_since").unwrap_or(0),
            attempts: 0,
            last_error: None,
            customer_id: None,
            lead_id: None,
            link_status: None,
            link_method: None,
            link_confidence: None,
            extracted_name: text("extracted_name"),
            review_priority: int("review_priority"),
            review_reason: text("review_reason"),
            review_candidates: None,
            created_at: 0,
            updated_at: 0,
            version: 0,
        },
        corrupt: Some(why),
        deferred_until: int("review_deferred_until"),
        deferred_reason: text("review_deferred_reason"),
    }
}

impl Store {
    /// A page of the review queue for `q` as of `now`, with the total that matches, the
    /// deferred count and the candidates' details. `limit` rows from `q.offset`.
    pub async fn review_page_at(
        &self,
        q: &ReviewQuery,
        limit: u32,
        now: i64,
    ) -> Result<ReviewPage> {
        let mut binds: Vec<Bind> = vec![Bind::Int(now)];
        let mut wheres = vec![
            "state = 'review'".to_string(),
            if q.deferred {
                "review_deferred_until > $1".to_string()
            } else {
                "(review_deferred_until IS NULL OR review_deferred_until <= $1)".to_string()
            },
        ];
        for word in q.text.split_whitespace() {
            let like = format!("%{}%", word.to_lowercase().replace(['%', '_'], ""));
            binds.push(Bind::Text(like));
            let n = binds.len();
            let mut any = vec![
                format!("LOWER(COALESCE(extracted_name, '')) LIKE ${n}"),
                format!("LOWER(COALESCE(number_status, '')) LIKE ${n}"),
                format!("LOWER(COALESCE(from_number, '')) LIKE ${n}"),
                format!("LOWER(COALESCE(review_reason, '')) LIKE ${n}"),
                format!("business_id IN (SELECT id FROM businesses WHERE LOWER(name) LIKE ${n})"),
            ];
            if let Ok(id) = word.trim_start_matches('#').parse::<i64>() {
                binds.push(Bind::Int(id));
                any.push(format!("id = ${}", binds.len()));
            }
            wheres.push(format!("({})", any.join(" OR ")));
        }
        let wh = wheres.join(" AND ");
        let dir = |asc: bool| if asc != q.reverse { "ASC" } else { "DESC" };
        let order = match q.sort % REVIEW_SORTS.len() {
            // The order of `calls_review_queue`, so the first page is an index range scan.
            0 => format!(
                "review_priority {}, state_since {}, id",
                dir(false),
                dir(true)
            ),
            1 => format!("state_since {}, id", dir(true)),
            _ => format!(
                "(SELECT LOWER(name) FROM businesses WHERE businesses.id = calls.business_id) {}, \
                 COALESCE(review_priority, 0) DESC, state_since, id",
                dir(true)
            ),
        };
        let page_sql = format!(
            "SELECT {CALL_COLUMNS}, review_deferred_until, review_deferred_reason FROM calls \
             WHERE {wh} ORDER BY {order} LIMIT {limit} OFFSET {}",
            q.offset.max(0)
        );
        let count_sql = format!("SELECT COUNT(*) FROM calls WHERE {wh}");
        let page = bind_all(sqlx::query(&page_sql), &binds).fetch_all(&self.pool);
        let count =
            bind_all_scalar(sqlx::query_scalar::<_, i64>(&count_sql), &binds).fetch_one(&self.pool);
        let deferred = sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM calls WHERE state = 'review' AND review_deferred_until > $1",
        )
        .bind(now)
        .fetch_one(&self.pool);
        let (rows, total, deferred_total) = tokio::try_join!(page, count, deferred)
            .ctx(|| format!("reading the review queue (search {:?})", q.text))?;
        let rows: Vec<ReviewItem> = rows
            .iter()
            .map(|r| match row_to_call(r) {
                Ok(call) => ReviewItem {
                    call,
                    corrupt: None,
                    deferred_until: col::<Option<i64>>(r, "review_deferred_until")
                        .ok()
                        .flatten(),
                    deferred_reason: col::<Option<String>>(r, "review_deferred_reason")
                        .ok()
                        .flatten(),
                },
                Err(e) => corrupt_call(r, e.to_string()),
            })
            .collect();
        let mut ids: Vec<i64> = rows.iter().flat_map(|r| candidate_ids(&r.call)).collect();
        ids.sort();
        ids.dedup();
        let mut biz: Vec<i64> = rows.iter().map(|r| r.call.business_id).collect();
        biz.sort();
        biz.dedup();
        let (customers, link_thresholds) =
            tokio::try_join!(self.candidate_details(&ids), self.link_thresholds(&biz))?;
        Ok(ReviewPage {
            rows,
            total,
            deferred_total,
            query: q.clone(),
            customers,
            link_thresholds,
        })
    }

    /// Phone, email, reference and call history of the given customers.
    pub async fn candidate_details(&self, ids: &[i64]) -> Result<HashMap<i64, CandidateDetail>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT c.id, c.name, c.phone, c.email, c.external_id, c.is_temporary, \
             (SELECT COUNT(*) FROM calls k WHERE k.customer_id = c.id) AS n_calls, \
             (SELECT MAX(k.started_at) FROM calls k WHERE k.customer_id = c.id) AS last_call \
             FROM customers c WHERE c.id IN ({list})"
        );
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .ctx(|| "reading the review candidates' details".into())?;
        let mut out = HashMap::new();
        for r in &rows {
            let d = CandidateDetail {
                id: col(r, "id")?,
                name: col(r, "name")?,
                phone: col(r, "phone")?,
                email: col(r, "email")?,
                reference: col(r, "external_id")?,
                is_temporary: col::<i64>(r, "is_temporary")? != 0,
                calls: col(r, "n_calls")?,
                last_call_at: col(r, "last_call")?,
            };
            out.insert(d.id, d);
        }
        Ok(out)
    }

    async fn link_thresholds(&self, ids: &[i64]) -> Result<HashMap<i64, f64>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let list = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let rows = sqlx::query(&format!(
            "SELECT id, link_threshold FROM businesses WHERE id IN ({list})"
        ))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "reading the businesses' link thresholds".into())?;
        rows.iter()
            .map(|r| Ok((col(r, "id")?, col(r, "link_threshold")?)))
            .collect()
    }
}

#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    Text(String),
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;
type AnyScalar<'q, T> = sqlx::query::QueryScalar<'q, sqlx::Any, T, sqlx::any::AnyArguments<'q>>;

fn bind_all<'q>(mut q: AnyQuery<'q>, binds: &[Bind]) -> AnyQuery<'q> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.clone()),
        };
    }
    q
}

fn bind_all_scalar<'q, T>(mut q: AnyScalar<'q, T>, binds: &[Bind]) -> AnyScalar<'q, T> {
    for b in binds {
        q = match b {
            Bind::Int(i) => q.bind(*i),
            Bind::Text(t) => q.bind(t.clone()),
        };
    }
    q
}

impl Store {
    /// The caller's own transcript lines the heard name came from (lines of a speaker that
    /// is not the agent, those containing a word of `name` first), at most `max`, each as
    /// "12.3s text". Empty when the call has no transcript.
    pub async fn caller_lines(
        &self,
        call_id: i64,
        name: Option<&str>,
        max: usize,
    ) -> Result<Vec<String>> {
        let row = sqlx::query("SELECT text, segments FROM transcripts WHERE call_id = $1")
            .bind(call_id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading the transcript of call {call_id}"))?;
        let Some(r) = row else {
            return Ok(vec![]);
        };
        let segments: String = col(&r, "segments")?;
        let segs: Vec<serde_json::Value> = serde_json::from_str(&segments).unwrap_or_default();
        let words: Vec<String> = name
            .unwrap_or("")
            .split_whitespace()
            .map(|w| w.to_lowercase())
            .filter(|w| w.chars().count() > 1)
            .collect();
        let caller: Vec<(f64, String)> = segs
            .iter()
            .filter(|s| {
                let sp = s["speaker"].as_str().unwrap_or("").to_lowercase();
                !(sp.contains("agent") || sp.contains("assistant") || sp.contains("bot"))
            })
            .map(|s| {
                (
                    s["start"].as_f64().unwrap_or(0.0),
                    s["text"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let mut hits: Vec<&(f64, String)> = caller
            .iter()
            .filter(|(_, t)| {
                let t = t.to_lowercase();
                words.iter().any(|w| t.contains(w))
            })
            .collect();
        if hits.is_empty() {
            hits = caller.iter().collect();
        }
        if caller.is_empty() && segs.is_empty() {
            let text: String = col(&r, "text")?;
            return Ok(text.lines().take(max).map(str::to_string).collect());
        }
        Ok(hits
            .into_iter()
            .take(max)
            .map(|(at, t)| format!("{at:.1}s {t}"))
            .collect())
    }
}
