//! Incremental CRM lead sync against a LeadSquared-style server started in the test
//! (`Leads.Get` with a ModifiedOn lookup, sorting and paging), into SQLite and Postgres:
//! pages, a bad phone reported by CRM id with nothing written, the watermark, a rerun that
//! changes nothing, a modified lead, and a run cut off by a 500 that a rerun completes.

mod common;

use callops::pipeline::lead_sync::{sync_leads, watermark_source};
use callops::pipeline::providers::{build_crm, ProviderSettings};
use callops::store::Store;
use common::http_server::{Resp, Server};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};

type Leads = Arc<Mutex<Vec<Value>>>;

/// Set to make the next request for page 2 fail with a 500.
static FAIL_PAGE_2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn lead(id: &str, first: &str, phone: &str, modified: &str) -> Value {
    json!({"ProspectID": id, "FirstName": first, "LastName": "Test", "Phone": phone,
           "ProspectStage": "Prospect", "ModifiedOn": modified})
}

/// `Leads.Get`: ModifiedOn >= LookupValue, ascending, 1-based pages; wrong keys → 401.
async fn fake_crm(leads: Leads) -> Server {
    Server::start(move |req, _| {
        if req.header("x-lsq-accesskey") != Some("ak") || req.header("x-lsq-secretkey") != Some("sk")
        {
            return Resp::json(401, json!({"Status": "Error", "ExceptionType": "MXUnAuthorizedException", "ExceptionMessage": "Invalid keys"}));
        }
        if req.path != "/v2/LeadManagement.svc/Leads.Get" || req.method != "POST" {
            return Resp::json(404, json!({"Status": "Error", "ExceptionMessage": "no such endpoint"}));
        }
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(body["Parameter"]["LookupName"], "ModifiedOn");
        assert_eq!(body["Parameter"]["SqlOperator"], ">=");
        let since = body["Parameter"]["LookupValue"].as_str().unwrap().to_string();
        let page = body["Paging"]["PageIndex"].as_u64().unwrap() as usize;
        let size = body["Paging"]["PageSize"].as_u64().unwrap() as usize;
        if page == 2 && FAIL_PAGE_2.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return Resp::json(500, json!({"Status": "Error", "ExceptionType": "MXInternalException", "ExceptionMessage": "busy"}));
        }
        let mut all: Vec<Value> = leads
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l["ModifiedOn"].as_str().unwrap() >= since.as_str())
            .cloned()
            .collect();
        all.sort_by(|a, b| a["ModifiedOn"].as_str().cmp(&b["ModifiedOn"].as_str()));
        let rows: Vec<Value> = all.into_iter().skip((page - 1) * size).take(size).collect();
        Resp::json(200, Value::Array(rows))
    })
    .await
}

async fn scalar(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

async fn lead_sync(store: Store) {
    let leads: Leads = Arc::new(Mutex::new(vec![
        lead("p1", "Anna", "+49 30 1234561", "2026-11-20 10:00:00"),
        lead("p2", "Ben", "+49 30 1234562", "2026-11-20 10:00:01"),
        lead("p3", "Cem", "12", "2026-11-20 10:00:02"),
        lead("p4", "Dana", "030 1234564", "2026-11-20 10:00:03"),
        lead("p5", "Eli", "+49 30 1234565", "2026-11-20 10:00:04"),
    ]));
    let server = fake_crm(leads.clone()).await;
    let crm = build_crm(
        "leadsquared",
        &ProviderSettings {
            base_url: Some(server.base.clone()),
            api_key: Some("ak".into()),
            api_secret: Some("sk".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let biz = store.ensure_business("Lead Sync GmbH").await.unwrap();

    // First run: three pages of two; the bad phone is reported with its CRM id.
    let r = sync_leads(&store, &*crm, &biz, 2).await.unwrap();
    assert_eq!(
        (r.pages, r.fetched, r.created, r.updated),
        (3, 5, 4, 0),
        "{r:?}"
    );
    assert_eq!(r.rejected.len(), 1, "{r:?}");
    assert_eq!(r.rejected[0].0, "p3");
    assert!(r.rejected[0].1.contains("\"12\""), "{r:?}");
    assert_eq!(r.watermark_after.as_deref(), Some("2026-11-20 10:00:04"));
    let bid = biz.id;
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM leads WHERE business_id = {bid}")
        )
        .await,
        4
    );
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM leads WHERE business_id = {bid} AND phone = '+49301234564' AND external_id = 'p4'")
        )
        .await,
        1,
        "a national number is normalized with the business's region"
    );
    assert_eq!(
        store
            .watermark(&watermark_source(&*crm), bid)
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-20 10:00:04")
    );

    // Rerun without changes: only the lead at the watermark is read again; nothing new.
    let r = sync_leads(&store, &*crm, &biz, 2).await.unwrap();
    assert_eq!((r.fetched, r.created, r.updated), (1, 0, 1), "{r:?}");

    // A lead moved on in the CRM and a new one: both picked up.
    {
        let mut l = leads.lock().unwrap();
        l[0]["ProspectStage"] = json!("Customer");
        l[0]["ModifiedOn"] = json!("2026-11-21 09:00:00");
        l.push(lead("p6", "Fay", "+49 30 1234566", "2026-11-21 09:30:00"));
    }
    let r = sync_leads(&store, &*crm, &biz, 2).await.unwrap();
    assert_eq!((r.created, r.updated), (1, 2), "{r:?}");
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM leads WHERE business_id = {bid} AND external_id = 'p1' AND status = 'Customer'")
        )
        .await,
        1
    );

    // Cut off by a 500 on page 2: page 1 is kept and the watermark moved past it only.
    {
        let mut l = leads.lock().unwrap();
        for (i, id) in ["p7", "p8", "p9"].iter().enumerate() {
            l.push(lead(
                id,
                "New",
                &format!("+49 30 123457{i}"),
                &format!("2026-11-22 08:00:0{i}"),
            ));
        }
    }
    FAIL_PAGE_2.store(true, std::sync::atomic::Ordering::SeqCst);
    let e = sync_leads(&store, &*crm, &biz, 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("page 2") && e.contains("2026-11-22 08:00:00") && e.contains("rerun"),
        "{e}"
    );
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM leads WHERE business_id = {bid}")
        )
        .await,
        6,
        "page 1 (p6, p7) was written before the failure"
    );
    let r = sync_leads(&store, &*crm, &biz, 2).await.unwrap();
    assert_eq!((r.created, r.updated), (2, 1), "{r:?}");
    assert_eq!(r.watermark_after.as_deref(), Some("2026-11-22 08:00:02"));
    assert_eq!(
        scalar(
            &store,
            &format!("SELECT COUNT(*) FROM leads WHERE business_id = {bid}")
        )
        .await,
        8
    );

    // Wrong keys: a clear error, nothing written, watermark untouched.
    let bad = build_crm(
        "leadsquared",
        &ProviderSettings {
            base_url: Some(server.base.clone()),
            api_key: Some("nope".into()),
            api_secret: Some("sk".into()),
            ..Default::default()
        },
    )
    .unwrap();
    let e = sync_leads(&store, &*bad, &biz, 2)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("401") && e.contains("Invalid keys"), "{e}");
    assert_eq!(
        store
            .watermark(&watermark_source(&*crm), bid)
            .await
            .unwrap()
            .as_deref(),
        Some("2026-11-22 08:00:02")
    );
}

#[tokio::test]
async fn sqlite_lead_sync() {
    let (store, _dir) = common::sqlite_store().await;
    lead_sync(store).await;
}

#[tokio::test]
#[cfg_attr(callops_no_postgres, ignore = "CALLOPS_TEST_POSTGRES_URL not set")]
async fn postgres_lead_sync() {
    let Some(url) = common::postgres_url() else {
        return;
    };
    let db = common::PgDb::create(&url).await;
    lead_sync(db.store.clone()).await;
}
