//! Compound name keys (issue 14, migration 0014): every customer holds a key per
//! combination of a surname key and a first-name key, so a full-name lookup reads one
//! short posting list. They are kept with the name (import, change, rename), migration
//! 0014 builds them in SQL for customers keyed before, and a full name finds its one
//! customer among thousands of namesakes whose surname and first name are each too common
//! to be read alone. The number of holders of every key (migration 0016, kept by
//! triggers) stays exactly what counting the keys gives. Candidates are read from the key
//! rows alone (migration 0017), which carry their customer's current name and phone, and
//! only while it is live. On SQLite and on Postgres.

#[macro_use]
mod common;

use callops::bench::link::ctx_for;
use callops::domain::names::{compound_key, compound_keys, name_keys, word_keys};
use callops::domain::stage::Stage;
use callops::pipeline::stages::link::KEY_READ_LIMIT;
use callops::pipeline::stages::{link, sync, Outcome};
use callops::queue::Job;
use callops::store::customers::{NewCustomer, NAME_KEYS_VERSION};
use callops::store::{Dialect, NewCall, Store};

both_stores!(
    compound_keys_follow_import_change_and_rename,
    a_full_name_finds_its_customer_among_thousands_of_namesakes,
    migration_0014_builds_the_compound_keys_of_customers_keyed_before,
    a_number_in_the_business_settings_is_its_own_not_a_customers,
    candidates_carry_their_customers_current_name_and_phone,
    a_number_the_business_calls_out_from_is_its_own,
);

async fn keys_of(store: &Store, customer_id: i64) -> Vec<String> {
    let mut k: Vec<String> =
        sqlx::query_scalar("SELECT key FROM customer_name_keys WHERE customer_id = $1")
            .bind(customer_id)
            .fetch_all(store.pool())
            .await
            .unwrap();
    k.sort();
    k
}

/// `customer_name_key_counts` (kept by triggers, migration 0016) holds, for every key,
/// exactly how many customers hold it: what counting the postings gives.
async fn counts_are_exact(store: &Store) {
    let read = |sql: &'static str| async move {
        let mut rows: Vec<(i64, String, i64)> =
            sqlx::query_as(sql).fetch_all(store.pool()).await.unwrap();
        rows.sort();
        rows
    };
    let kept = read("SELECT business_id, key, n FROM customer_name_key_counts WHERE n <> 0").await;
    let counted = read(
        "SELECT business_id, key, COUNT(*) AS n FROM customer_name_keys GROUP BY business_id, key",
    )
    .await;
    assert!(!counted.is_empty());
    assert_eq!(kept, counted, "name key counts drifted from the keys");
}

fn expected(name: &str) -> Vec<String> {
    let mut k = name_keys(name);
    k.sort();
    k
}

fn full(first: &str, sur: &str) -> String {
    compound_key(&word_keys(sur)[0], &word_keys(first)[0])
}

async fn compound_keys_follow_import_change_and_rename(store: Store) {
    let bid = store.ensure_business("Praxis Keys").await.unwrap().id;
    let import = |name: Option<&str>, phone: &str| NewCustomer {
        business_id: bid,
        external_id: Some("crm-1".into()),
        name: name.map(str::to_string),
        phone: Some(phone.into()),
        ..Default::default()
    };
    // Import: keyed (per-word and compound keys) before any name lookup.
    let (id, _) = store
        .upsert_customer(&import(Some("Anna Müller"), "+4930111111"))
        .await
        .unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 1);
    let keys = keys_of(&store, id).await;
    assert_eq!(keys, expected("Anna Müller"));
    assert!(keys.contains(&full("Anna", "Müller")), "{keys:?}");
    assert!(keys.contains(&"cf:muller+f:anna".to_string()), "{keys:?}");
    // Idempotent: nothing left to key, nothing changes.
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 0);
    assert_eq!(keys_of(&store, id).await, keys);
    // Re-import with the same name: still keyed, not re-keyed.
    store
        .upsert_customer(&import(Some("Anna Müller"), "+4930111111"))
        .await
        .unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 0);
    // Rename (a changed CRM record): the old compound keys go, the new ones come.
    store
        .upsert_customer(&import(Some("Berta Schmidt"), "+4930111111"))
        .await
        .unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 1);
    let keys = keys_of(&store, id).await;
    assert_eq!(keys, expected("Berta Schmidt"));
    assert!(keys.contains(&full("Berta", "Schmidt")), "{keys:?}");
    assert!(!keys.iter().any(|k| k.contains("muller")), "{keys:?}");
    // A customer first known by number only, named later (same phone, no external id).
    let nameless = NewCustomer {
        business_id: bid,
        phone: Some("+4930222222".into()),
        ..Default::default()
    };
    let (id2, _) = store.upsert_customer(&nameless).await.unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 0);
    assert!(keys_of(&store, id2).await.is_empty());
    store
        .upsert_customer(&NewCustomer {
            name: Some("Cem Yılmaz".into()),
            ..nameless.clone()
        })
        .await
        .unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 1);
    assert_eq!(keys_of(&store, id2).await, expected("Cem Yılmaz"));
    // A one-word name pairs its surname keys with "n1".
    let (id3, _) = store
        .upsert_customer(&NewCustomer {
            business_id: bid,
            name: Some("Schreiber".into()),
            phone: Some("+4930333333".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    store.ensure_name_keys(bid).await.unwrap();
    let keys = keys_of(&store, id3).await;
    assert!(keys.contains(&"cf:schreiber+n1".to_string()), "{keys:?}");
    let version: i64 = sqlx::query_scalar("SELECT name_keys_version FROM customers WHERE id = $1")
        .bind(id3)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(version, NAME_KEYS_VERSION);
    // Writing the same keys again (nothing new) changes no count.
    store
        .write_name_keys(bid, &[(id3, name_keys("Schreiber"))])
        .await
        .unwrap();
    counts_are_exact(&store).await;
}

/// Insert customers named `names` (unkeyed: the link stage keys them), phones from `base`.
async fn insert_named(store: &Store, bid: i64, names: &[String], base: i64) {
    let now = callops::now_ms();
    for (c, chunk) in names.chunks(400).enumerate() {
        let mut values = Vec::new();
        for (i, _) in chunk.iter().enumerate() {
            values.push(format!(
                "({bid}, ${}, '+4930{:08}', 0, {now}, {now})",
                i + 1,
                base + (c * 400 + i) as i64
            ));
        }
        let sql = format!(
            "INSERT INTO customers (business_id, name, phone, is_temporary, created_at, updated_at) VALUES {}",
            values.join(",")
        );
        let mut q = sqlx::query(&sql);
        for n in chunk {
            q = q.bind(n.as_str());
        }
        q.execute(store.pool()).await.unwrap();
    }
}

async fn link_says(store: &Store, bid: i64, ext: &str, says: &str) -> (Outcome, Option<i64>) {
    link_call(store, bid, ext, "anonymous", says).await
}

/// Ingest an inbound call from `from` whose caller says `says`; run sync and link.
async fn link_call(
    store: &Store,
    bid: i64,
    ext: &str,
    from: &str,
    says: &str,
) -> (Outcome, Option<i64>) {
    let ctx = ctx_for(store.clone()).await.unwrap();
    let raw = serde_json::json!({"transcript": {"segments": [
        {"speaker": "agent", "start": 0.0, "end": 2.0, "text": "Praxis Namen, guten Tag, was kann ich für Sie tun?"},
        {"speaker": "caller", "start": 2.0, "end": 5.0, "text": says}]}});
    let (call, _) = store
        .ingest_call(&NewCall {
            business_id: bid,
            external_id: ext.into(),
            direction: "inbound".into(),
            from_number: Some(from.into()),
            to_number: Some("+493012340000".into()),
            duration_ms: 1000,
            raw: raw.to_string(),
            ..Default::default()
        })
        .await
        .unwrap();
    sync::run(
        &ctx,
        &call,
        &Job::new(bid, Stage::Sync, Some(call.id), serde_json::Value::Null),
    )
    .await
    .unwrap();
    let job = Job::new(bid, Stage::Link, Some(call.id), serde_json::Value::Null);
    let out = link::run(&ctx, &call, &job).await.unwrap();
    let cid: Option<i64> = sqlx::query_scalar("SELECT customer_id FROM calls WHERE id = $1")
        .bind(call.id)
        .fetch_one(store.pool())
        .await
        .unwrap();
    (out, cid)
}

async fn a_full_name_finds_its_customer_among_thousands_of_namesakes(store: Store) {
    let bid = store.ensure_business("Praxis Namen").await.unwrap().id;
    // 5,000 Müllers (none called Theodor) and 3,000 Theodors (none called Müller): both
    // words of "Theodor Müller" are far too common to be read alone.
    let firsts = [
        "Anna", "Peter", "Klaus", "Sabine", "Jürgen", "Monika", "Eva",
    ];
    let surs = [
        "Weber",
        "Schmidt",
        "Schneider",
        "Fischer",
        "Becker",
        "Wagner",
    ];
    let mut names: Vec<String> = (0..5_000)
        .map(|i| format!("{} Müller", firsts[i % firsts.len()]))
        .collect();
    names.extend((0..3_000).map(|i| format!("Theodor {}", surs[i % surs.len()])));
    const { assert!(5_000 > KEY_READ_LIMIT && 3_000 > KEY_READ_LIMIT) };
    insert_named(&store, bid, &names, 10_000_000).await;
    insert_named(&store, bid, &["Theodor Müller".to_string()], 30_000_000).await;
    let theodor: i64 = sqlx::query_scalar(
        "SELECT id FROM customers WHERE business_id = $1 AND name = 'Theodor Müller'",
    )
    .bind(bid)
    .fetch_one(store.pool())
    .await
    .unwrap();
    for (ext, says) in [
        ("t1", "Guten Tag, mein Name ist Theodor Müller."),
        ("t2", "Guten Tag, mein Name ist Theodor Mueller."),
    ] {
        let (out, cid) = link_says(&store, bid, ext, says).await;
        let reason = format!("{out:?}");
        match &out {
            // Linked: to Theodor. In review (a surname most customers have weighs less):
            // Theodor first.
            Outcome::Next { .. } => assert_eq!(cid, Some(theodor), "{says}: {reason}"),
            _ => assert!(
                reason.contains(&format!("#{theodor} 'Theodor Müller'")),
                "{says}: {reason}"
            ),
        }
        assert!(
            reason.contains("not read alone"),
            "{says}: the too-common surname is said: {reason}"
        );
    }
    // Another first name of a Müller: many namesakes with exactly that name → review with
    // them as candidates, not a link, and not nothing.
    let (out, cid) = link_says(&store, bid, "t4", "Guten Tag, mein Name ist Eva Müller.").await;
    assert!(
        matches!(out, Outcome::Review { .. }) && cid.is_none(),
        "{out:?}"
    );
    let cands: String = sqlx::query_scalar(
        "SELECT review_candidates FROM calls WHERE business_id = $1 AND external_id = 't4'",
    )
    .bind(bid)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let cands: Vec<serde_json::Value> = serde_json::from_str(&cands).unwrap();
    assert!(cands.len() >= 50, "{}", cands.len());
    assert!(
        cands.iter().take(50).all(|c| c["name"] == "Eva Müller"),
        "{cands:?}"
    );
    counts_are_exact(&store).await;
}

async fn migration_0014_builds_the_compound_keys_of_customers_keyed_before(store: Store) {
    let bid = store.ensure_business("Praxis Alt").await.unwrap().id;
    let names = [
        "Anna Müller",
        "Schreiber",
        "Frau Dr. Maria-Luisa von Hohenberg",
        "राहुल शर्मा",
        "דוד כהן",
        "Cem Yılmaz",
    ];
    insert_named(
        &store,
        bid,
        &names.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        40_000_000,
    )
    .await;
    let ids: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM customers WHERE business_id = $1 ORDER BY id")
            .bind(bid)
            .fetch_all(store.pool())
            .await
            .unwrap();
    // Keyed as a build before 0014 did: per-word keys only, version 1.
    let old = |name: &str| -> Vec<String> {
        name_keys(name)
            .into_iter()
            .filter(|k| !k.starts_with('c'))
            .collect()
    };
    let mut keyed: Vec<(i64, Vec<String>)> =
        ids.iter().zip(names).map(|(id, n)| (*id, old(n))).collect();
    // And a name with more combinations than a customer holds compound keys for (made-up
    // keys: 9 surname keys × 8 first-name keys).
    insert_named(&store, bid, &["Wide Name".to_string()], 40_000_100).await;
    let wide: i64 = sqlx::query_scalar("SELECT id FROM customers WHERE name = 'Wide Name'")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let wide_sur: Vec<String> = (0..9).map(|i| format!("x:S{i}")).collect();
    let wide_first: Vec<String> = (0..8).map(|i| format!("x:F{i}")).collect();
    let mut wide_keys: Vec<String> = wide_sur.iter().map(|k| format!("l{k}")).collect();
    wide_keys.extend(wide_first.iter().map(|k| format!("f{k}")));
    keyed.push((wide, wide_keys.clone()));
    store.write_name_keys(bid, &keyed).await.unwrap();
    sqlx::query("UPDATE customers SET name_keys_version = 1 WHERE business_id = $1")
        .bind(bid)
        .execute(store.pool())
        .await
        .unwrap();
    let sql = match store.dialect() {
        Dialect::Postgres => include_str!("../migrations/postgres/0014_compound_name_keys.sql"),
        Dialect::Sqlite => include_str!("../migrations/sqlite/0014_compound_name_keys.sql"),
    };
    let mut tx = store.begin_write().await.unwrap();
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    for (id, name) in ids.iter().zip(names) {
        assert_eq!(keys_of(&store, *id).await, expected(name), "{name}");
    }
    let mut want: Vec<String> = wide_keys;
    want.extend(compound_keys(&wide_sur, &wide_first));
    want.sort();
    assert!(want.contains(&"cx:S0+*".to_string()), "{want:?}");
    assert_eq!(keys_of(&store, wide).await, want);
    // All marked current: nothing for the link stage to re-key.
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 0);
    let (out, cid) = link_says(&store, bid, "m1", "Guten Tag, mein Name ist Anna Müller.").await;
    assert_eq!(cid, Some(ids[0]), "{out:?}");
    counts_are_exact(&store).await;
}

/// `own_numbers` in the business's settings (read with the business row the link stage
/// caches): a call from one of them is the business calling itself, never a customer's
/// number; without the setting the same call creates a customer with that number.
async fn a_number_in_the_business_settings_is_its_own_not_a_customers(store: Store) {
    let holders = |bid: i64| {
        let store = store.clone();
        async move {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM customers WHERE business_id = $1 AND phone = '+49305550100'",
            )
            .bind(bid)
            .fetch_one(store.pool())
            .await
            .unwrap()
        }
    };
    let says = "Guten Tag, hier ist Anna Berger, ich rufe wegen des Termins an.";
    for (name, own) in [("Praxis Ohne", false), ("Praxis Eigen", true)] {
        let bid = store.ensure_business(name).await.unwrap().id;
        let settings = if own {
            r#"{"own_numbers": ["030 5550100"]}"#
        } else {
            "{}"
        };
        sqlx::query("UPDATE businesses SET default_region = 'DE', settings = $1 WHERE id = $2")
            .bind(settings)
            .bind(bid)
            .execute(store.pool())
            .await
            .unwrap();
        let (out, cid) = link_call(&store, bid, "own-1", "+49 30 5550100", says).await;
        if own {
            assert_eq!(cid, None, "{out:?}");
            assert_eq!(holders(bid).await, 0, "{out:?}");
            match &out {
                Outcome::Review { reason } => {
                    assert!(reason.contains("business's own"), "{reason}")
                }
                other => panic!("expected review, got {other:?}"),
            }
        } else {
            assert!(cid.is_some(), "{out:?}");
            assert_eq!(holders(bid).await, 1, "{out:?}");
        }
    }
}

/// The name and phone each key row carries (migration 0017) follow the customer whoever
/// changes it (a trigger, not callops code: here plain SQL), and a merged or temporary
/// customer is no candidate until it is live again.
async fn candidates_carry_their_customers_current_name_and_phone(store: Store) {
    let bid = store.ensure_business("Praxis Karte").await.unwrap().id;
    let (id, _) = store
        .upsert_customer(&NewCustomer {
            business_id: bid,
            name: Some("Greta Brandt".into()),
            phone: Some("+4930111000".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let (other, _) = store
        .upsert_customer(&NewCustomer {
            business_id: bid,
            name: Some("Otto Brandt".into()),
            phone: Some("+4930111999".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 2);
    let keys = keys_of(&store, id).await;
    let found = |store: Store, keys: Vec<String>| async move {
        store
            .name_candidates_by_keys(bid, &keys, &[])
            .await
            .unwrap()
            .into_iter()
            .filter(|c| c.id == id)
            .map(|c| (c.name, c.phone))
            .collect::<Vec<_>>()
    };
    let card = |name: &str, phone: &str| vec![(name.to_string(), Some(phone.to_string()))];
    assert_eq!(
        found(store.clone(), keys.clone()).await,
        card("Greta Brandt", "+4930111000")
    );
    let exec = |sql: String| {
        let store = store.clone();
        async move {
            sqlx::query(&sql).execute(store.pool()).await.unwrap();
        }
    };
    exec(format!(
        "UPDATE customers SET phone = '+4930111222' WHERE id = {id}"
    ))
    .await;
    assert_eq!(
        found(store.clone(), keys.clone()).await,
        card("Greta Brandt", "+4930111222")
    );
    // A new name shows at once, under the keys of the old one until they are rebuilt.
    exec(format!(
        "UPDATE customers SET name = 'Greta Brandt-Wolf' WHERE id = {id}"
    ))
    .await;
    assert_eq!(
        found(store.clone(), keys.clone()).await,
        card("Greta Brandt-Wolf", "+4930111222")
    );
    exec(format!(
        "UPDATE customers SET merged_into = {other} WHERE id = {id}"
    ))
    .await;
    assert_eq!(found(store.clone(), keys.clone()).await, vec![]);
    exec(format!(
        "UPDATE customers SET merged_into = NULL WHERE id = {id}"
    ))
    .await;
    assert_eq!(found(store.clone(), keys.clone()).await.len(), 1);
    exec(format!(
        "UPDATE customers SET is_temporary = 1 WHERE id = {id}"
    ))
    .await;
    assert_eq!(found(store.clone(), keys.clone()).await, vec![]);
    exec(format!(
        "UPDATE customers SET is_temporary = 0 WHERE id = {id}"
    ))
    .await;
    // Keys rebuilt for the new name (the link stage does it) copy the name and phone of now.
    exec(format!(
        "UPDATE customers SET name_keys_version = 0 WHERE id = {id}"
    ))
    .await;
    assert_eq!(store.ensure_name_keys(bid).await.unwrap(), 1);
    let new_keys = keys_of(&store, id).await;
    assert_ne!(new_keys, keys);
    assert_eq!(
        found(store.clone(), new_keys).await,
        card("Greta Brandt-Wolf", "+4930111222")
    );
    // Every key row's copies are its customer's, whatever path wrote them.
    let stale: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM customer_name_keys k JOIN customers c ON c.id = k.customer_id \
         WHERE (CASE WHEN c.merged_into IS NULL AND c.is_temporary = 0 THEN c.name END) IS DISTINCT FROM k.live_name \
         OR c.phone IS DISTINCT FROM k.phone",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert_eq!(stale, 0);
    counts_are_exact(&store).await;
}

/// An inbound call from a number the business calls out from is the business itself. The
/// numbers are held per business for a second: a number first used for an outbound call
/// counts once that second is over, and another business's numbers never count.
async fn a_number_the_business_calls_out_from_is_its_own(store: Store) {
    let bid = store.ensure_business("Dials Out").await.unwrap().id;
    let other = store.ensure_business("Someone Else").await.unwrap().id;
    let outbound = |business_id: i64, ext: &'static str, e164: &'static str| {
        let store = store.clone();
        async move {
            let (call, _) = store
                .ingest_call(&NewCall {
                    business_id,
                    external_id: ext.into(),
                    direction: "outbound".into(),
                    from_number: Some(e164.into()),
                    duration_ms: 1000,
                    raw: "{}".into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            sqlx::query("UPDATE calls SET from_e164 = $1 WHERE id = $2")
                .bind(e164)
                .bind(call.id)
                .execute(store.pool())
                .await
                .unwrap();
        }
    };
    outbound(bid, "out-1", "+4930111000").await;
    outbound(other, "out-2", "+4930222000").await;
    assert!(store.dials_out_from(bid, "+4930111000").await.unwrap());
    assert!(!store.dials_out_from(bid, "+4930222000").await.unwrap());
    assert!(!store.dials_out_from(bid, "+4930333000").await.unwrap());
    outbound(bid, "out-3", "+4930333000").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        store.dials_out_from(bid, "+4930333000").await.unwrap(),
        "a new outbound number counts after a second"
    );
    assert!(store.dials_out_from(other, "+4930222000").await.unwrap());
}
