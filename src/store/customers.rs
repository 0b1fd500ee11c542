//! Customers and leads: what calls are linked to and what the CRM receives.

use super::{col, Ctx, Dialect, Result, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

/// The name-key scheme `write_name_keys` writes: 1 = per-word keys (migration 0008),
/// 2 = per-word keys plus compound keys (migration 0014). Customers below it are
/// (re-)keyed by [`Store::ensure_name_keys`]; 0 = never keyed or renamed since.
pub const NAME_KEYS_VERSION: i64 = 2;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Customer {
    pub id: i64,
    pub business_id: i64,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub is_temporary: bool,
    pub merged_into: Option<i64>,
}

const CUSTOMER_COLUMNS: &str =
    "id, business_id, external_id, name, phone, email, is_temporary, merged_into";

/// A customer as name matching sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct NameCandidate {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
}

fn decode_name_candidates(json: &str) -> Result<Vec<NameCandidate>> {
    let rows: Vec<(i64, String, Option<String>)> = serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("candidate customers: {e}")))?;
    let mut out: Vec<NameCandidate> = rows
        .into_iter()
        .map(|(id, name, phone)| NameCandidate { id, name, phone })
        .collect();
    out.sort_by_key(|c| c.id);
    // Two rows of one customer differ only while a change to it commits: keep one.
    out.dedup_by_key(|c| c.id);
    Ok(out)
}

fn customer(r: &AnyRow) -> Result<Customer> {
    Ok(Customer {
        id: col(r, "id")?,
        business_id: col(r, "business_id")?,
        external_id: col(r, "external_id")?,
        name: col(r, "name")?,
        phone: col(r, "phone")?,
        email: col(r, "email")?,
        is_temporary: col::<i64>(r, "is_temporary")? != 0,
        merged_into: col(r, "merged_into")?,
    })
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Lead {
    pub id: i64,
    pub business_id: i64,
    pub customer_id: Option<i64>,
    pub phone: String,
    pub name: Option<String>,
    pub status: String,
    pub source: String,
    pub call_count: i64,
    pub crm_id: Option<String>,
    pub external_id: Option<String>,
}

const LEAD_COLUMNS: &str =
    "id, business_id, customer_id, phone, name, status, source, call_count, crm_id, external_id";

fn lead(r: &AnyRow) -> Result<Lead> {
    Ok(Lead {
        id: col(r, "id")?,
        business_id: col(r, "business_id")?,
        customer_id: col(r, "customer_id")?,
        phone: col(r, "phone")?,
        name: col(r, "name")?,
        status: col(r, "status")?,
        source: col(r, "source")?,
        call_count: col(r, "call_count")?,
        crm_id: col(r, "crm_id")?,
        external_id: col(r, "external_id")?,
    })
}

/// A customer to create or import.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NewCustomer {
    pub business_id: i64,
    pub external_id: Option<String>,
    pub name: Option<String>,
    pub name_normalized: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub is_temporary: bool,
}

/// What the link stage decided for a call.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LinkUpdate {
    pub customer_id: Option<i64>,
    pub link_status: String,
    pub link_method: Option<String>,
    pub link_confidence: Option<f64>,
    pub extracted_name: Option<String>,
    pub review_priority: Option<i64>,
    pub review_reason: Option<String>,
    pub review_candidates: Option<String>,
}

impl Store {
    /// Live (not merged-away) customers with this phone.
    pub async fn customers_by_phone(&self, business_id: i64, e164: &str) -> Result<Vec<Customer>> {
        let rows = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE business_id = $1 AND phone = $2 AND merged_into IS NULL ORDER BY id"
        ))
        .bind(business_id)
        .bind(e164)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("finding customers of business {business_id} by phone"))?;
        rows.iter().map(customer).collect()
    }

    pub async fn customer(&self, id: i64) -> Result<Customer> {
        let r = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("reading customer {id}"))?
        .ok_or_else(|| StoreError::NotFound(format!("customer {id}")))?;
        customer(&r)
    }

    /// Named, live, non-temporary customers of a business: the name-match candidates.
    pub async fn named_customers(&self, business_id: i64, limit: u32) -> Result<Vec<Customer>> {
        let rows = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE business_id = $1 AND name IS NOT NULL \
             AND merged_into IS NULL AND is_temporary = 0 ORDER BY id LIMIT {limit}"
        ))
        .bind(business_id)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("listing customers of business {business_id}"))?;
        rows.iter().map(customer).collect()
    }

    /// Customers of a business whose name, phone or email contains `text` (any case),
    /// for an operator looking for the right one to link.
    pub async fn search_customers(
        &self,
        business_id: i64,
        text: &str,
        limit: u32,
    ) -> Result<Vec<Customer>> {
        let pattern = format!(
            "%{}%",
            text.trim()
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let rows = sqlx::query(&format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE business_id = $1 AND merged_into IS NULL \
             AND (LOWER(COALESCE(name, '')) LIKE $2 ESCAPE '\\' OR COALESCE(phone, '') LIKE $2 ESCAPE '\\' \
             OR LOWER(COALESCE(email, '')) LIKE $2 ESCAPE '\\') ORDER BY is_temporary, name, id LIMIT {limit}"
        ))
        .bind(business_id)
        .bind(pattern)
        .fetch_all(&self.pool)
        .await
        .ctx(|| format!("searching customers of business {business_id} for {text:?}"))?;
        rows.iter().map(customer).collect()
    }

    /// Insert a customer; with an external id, an existing one is updated instead (imports
    /// are repeatable). A live customer with the same (business, phone) is the same
    /// customer: it is completed (name, email, external id where missing), not duplicated.
    pub async fn upsert_customer(&self, c: &NewCustomer) -> Result<(i64, bool)> {
        let now = crate::now_ms();
        if let Some(ext) = &c.external_id {
            let existing =
                sqlx::query("SELECT id FROM customers WHERE business_id = $1 AND external_id = $2")
                    .bind(c.business_id)
                    .bind(ext)
                    .fetch_optional(&self.pool)
                    .await
                    .ctx(|| format!("looking up customer {ext:?}"))?;
            if let Some(r) = existing {
                let id: i64 = col(&r, "id")?;
                sqlx::query(
                    "UPDATE customers SET name = $1, name_normalized = $2, phone = $3, email = $4, updated_at = $5, \
                     name_keys_version = CASE WHEN name IS NOT DISTINCT FROM $1 THEN name_keys_version ELSE 0 END WHERE id = $6",
                )
                .bind(c.name.as_deref())
                .bind(c.name_normalized.as_deref())
                .bind(c.phone.as_deref())
                .bind(c.email.as_deref())
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await
                .ctx(|| format!("updating customer {id}"))?;
                return Ok((id, false));
            }
        }
        let r = sqlx::query(
            "INSERT INTO customers (business_id, external_id, name, name_normalized, phone, email, is_temporary, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) \
             ON CONFLICT (business_id, phone) WHERE phone IS NOT NULL AND merged_into IS NULL DO UPDATE SET \
             name = COALESCE(customers.name, excluded.name), \
             name_normalized = COALESCE(customers.name_normalized, excluded.name_normalized), \
             email = COALESCE(customers.email, excluded.email), \
             external_id = COALESCE(customers.external_id, excluded.external_id), \
             name_keys_version = CASE WHEN customers.name IS NULL THEN 0 ELSE customers.name_keys_version END, \
             updated_at = excluded.updated_at \
             RETURNING id, created_at",
        )
        .bind(c.business_id)
        .bind(c.external_id.as_deref())
        .bind(c.name.as_deref())
        .bind(c.name_normalized.as_deref())
        .bind(c.phone.as_deref())
        .bind(c.email.as_deref())
        .bind(c.is_temporary as i64)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .ctx(|| format!("creating a customer for business {}", c.business_id))?;
        Ok((col(&r, "id")?, col::<i64>(&r, "created_at")? == now))
    }

    /// The link stage's find-or-create, race-free: the customer holding (business, phone),
    /// created if none, and the call's link written, in one transaction. Two concurrent
    /// calls from one new number get one customer (the unique index of migration 0008
    /// decides; the loser's INSERT does nothing and it reads the winner's row). A customer
    /// without a phone (temporary) is always new. Returns (customer id, created).
    pub async fn link_call_to_customer_by_phone(
        &self,
        call_id: i64,
        c: &NewCustomer,
        link: &LinkUpdate,
    ) -> Result<(i64, bool)> {
        let now = crate::now_ms();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO customers (business_id, external_id, name, name_normalized, phone, email, is_temporary, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8) \
             ON CONFLICT (business_id, phone) WHERE phone IS NOT NULL AND merged_into IS NULL DO NOTHING RETURNING id",
        )
        .bind(c.business_id)
        .bind(c.external_id.as_deref())
        .bind(c.name.as_deref())
        .bind(c.name_normalized.as_deref())
        .bind(c.phone.as_deref())
        .bind(c.email.as_deref())
        .bind(c.is_temporary as i64)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("creating a customer for call {call_id}"))?;
        let (id, created) = match inserted {
            Some(r) => (col::<i64>(&r, "id")?, true),
            None => {
                let r = sqlx::query(
                    "SELECT id FROM customers WHERE business_id = $1 AND phone = $2 AND merged_into IS NULL",
                )
                .bind(c.business_id)
                .bind(c.phone.as_deref())
                .fetch_one(&mut *tx)
                .await
                .ctx(|| format!("reading the customer holding the number of call {call_id}"))?;
                (col::<i64>(&r, "id")?, false)
            }
        };
        let mut u = link.clone();
        u.customer_id = Some(id);
        set_call_link_in(&mut tx, call_id, &u).await?;
        tx.commit()
            .await
            .ctx(|| format!("committing the link of call {call_id}"))?;
        Ok((id, created))
    }

    /// Key the named customers of a business that have no (current) name keys yet: new
    /// rows from any writer, renamed or re-imported customers (their writers reset
    /// `name_keys_version` to 0), rows keyed by an older scheme (below
    /// [`NAME_KEYS_VERSION`]). Cheap when there are none (a partial index holds exactly
    /// those). Idempotent. Returns how many.
    pub async fn ensure_name_keys(&self, business_id: i64) -> Result<u64> {
        const BATCH: i64 = 2000;
        let unkeyed = format!(
            "SELECT id, name FROM customers WHERE business_id = $1 AND name_keys_version < {NAME_KEYS_VERSION} \
             AND name IS NOT NULL ORDER BY id LIMIT $2"
        );
        // Usually nothing to do: one cheap read, no transaction.
        let any = sqlx::query(&unkeyed)
            .bind(business_id)
            .bind(1_i64)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("listing unkeyed customers of business {business_id}"))?;
        if any.is_none() {
            return Ok(0);
        }
        // Claimed in the keying transaction: on Postgres, rows another worker is keying
        // right now are skipped (it keys them), so concurrent link runs neither redo each
        // other's work nor deadlock over the same customers' keys.
        let claim = match self.dialect {
            Dialect::Postgres => format!("{unkeyed} FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => unkeyed,
        };
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let rows = sqlx::query(&claim)
                .bind(business_id)
                .bind(BATCH)
                .fetch_all(&mut *tx)
                .await
                .ctx(|| format!("claiming unkeyed customers of business {business_id}"))?;
            let mut keyed: Vec<(i64, Vec<String>)> = Vec::with_capacity(rows.len());
            for r in &rows {
                let id: i64 = col(r, "id")?;
                let name: String = col(r, "name")?;
                keyed.push((id, crate::domain::names::name_keys(&name)));
            }
            write_name_keys_in(&mut tx, self.dialect, business_id, &keyed).await?;
            tx.commit()
                .await
                .ctx(|| format!("committing name keys of business {business_id}"))?;
            total += rows.len() as u64;
            if (rows.len() as i64) < BATCH {
                return Ok(total);
            }
        }
    }

    /// Replace the name keys of these customers and mark them keyed with the current
    /// scheme (one transaction). Keys travel as one JSON array per statement
    /// (`[[key, customer_id], …]`), so a bulk load is a few statements, not one per row.
    pub async fn write_name_keys(
        &self,
        business_id: i64,
        keyed: &[(i64, Vec<String>)],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        write_name_keys_in(&mut tx, self.dialect, business_id, keyed).await?;
        tx.commit()
            .await
            .ctx(|| format!("committing name keys of business {business_id}"))?;
        Ok(())
    }

    /// Add the name keys of customers that have none yet and were inserted with
    /// `name_keys_version` = [`NAME_KEYS_VERSION`] (bulk loads: nothing to clear, nothing
    /// to mark). One transaction.
    pub async fn load_name_keys(
        &self,
        business_id: i64,
        keyed: &[(i64, Vec<String>)],
    ) -> Result<()> {
        let mut tx = self.begin_write().await?;
        for chunk in keyed.chunks(20_000) {
            insert_name_keys(self.dialect, &mut tx, business_id, chunk).await?;
        }
        tx.commit()
            .await
            .ctx(|| format!("committing name keys of business {business_id}"))?;
        Ok(())
    }

    /// Live, named, non-temporary customers holding any of the `keys` (e.g. compound keys:
    /// one posting list per full name; or a surname key), or a `drive` key of a pair AND
    /// one of its `probe` keys (overflow keys of names with too many combinations, probed
    /// for the first name), by id. One statement on the key postings alone: each key row
    /// carries its customer's live name and phone (migration 0017), so no candidate is
    /// looked up by id. Not limited: callers decide from [`Store::name_key_counts`] which
    /// keys are worth reading.
    pub async fn name_candidates_by_keys(
        &self,
        business_id: i64,
        full: &[String],
        pairs: &[(Vec<String>, Vec<String>)],
    ) -> Result<Vec<NameCandidate>> {
        let list = |keys: &[String], binds: &mut Vec<String>| -> String {
            let start = binds.len();
            binds.extend(keys.iter().cloned());
            (0..keys.len())
                .map(|i| format!("${}", start + i + 2))
                .collect::<Vec<_>>()
                .join(",")
        };
        let mut owned: Vec<String> = Vec::new();
        let mut parts = Vec::new();
        if !full.is_empty() {
            let f = list(full, &mut owned);
            parts.push(format!(
                "SELECT customer_id, live_name, phone FROM customer_name_keys \
                 WHERE business_id = $1 AND key IN ({f}) AND live_name IS NOT NULL"
            ));
        }
        for (drive, probe) in pairs {
            if drive.is_empty() || probe.is_empty() {
                continue;
            }
            let d = list(drive, &mut owned);
            let p = list(probe, &mut owned);
            parts.push(format!(
                "SELECT a.customer_id, a.live_name, a.phone FROM customer_name_keys a \
                 WHERE a.business_id = $1 AND a.key IN ({d}) AND a.live_name IS NOT NULL \
                 AND EXISTS (SELECT 1 FROM customer_name_keys b WHERE b.business_id = $1 AND b.key IN ({p}) \
                 AND b.customer_id = a.customer_id)"
            ));
        }
        if parts.is_empty() {
            return Ok(vec![]);
        }
        // UNION: a customer found by several keys once (its rows carry the same copies).
        let union = parts.join(" UNION ");
        // Thousands of candidates come back as one JSON row, not a row each (on SQLite,
        // each row crosses from sqlx's worker thread on its own).
        let sql = match self.dialect {
            Dialect::Postgres => format!(
                "SELECT COALESCE(json_agg(json_build_array(customer_id, live_name, phone) ORDER BY customer_id), '[]')::text \
                 FROM ({union}) AS u"
            ),
            Dialect::Sqlite => format!(
                "SELECT json_group_array(json_array(customer_id, live_name, phone)) \
                 FROM (SELECT * FROM ({union}) ORDER BY customer_id)"
            ),
        };
        let mut q = sqlx::query_scalar::<_, String>(&sql).bind(business_id);
        for b in &owned {
            q = q.bind(b.as_str());
        }
        let json = q
            .fetch_one(&self.pool)
            .await
            .ctx(|| format!("finding customers of business {business_id} by name keys"))?;
        decode_name_candidates(&json)
    }

    /// Live, named, non-temporary customers holding any of these name keys (as stored:
    /// position prefix included, e.g. "lf:mueller"), by id. Not limited: callers decide from
    /// [`Store::name_key_counts`] which keys are worth reading.
    pub async fn customers_by_keys(
        &self,
        business_id: i64,
        keys: &[String],
    ) -> Result<Vec<Customer>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let marks: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN (SELECT customer_id FROM customer_name_keys \
             WHERE business_id = $1 AND key IN ({})) AND merged_into IS NULL AND is_temporary = 0 \
             AND name IS NOT NULL ORDER BY id",
            marks.join(",")
        );
        let mut q = sqlx::query(&sql).bind(business_id);
        for k in keys {
            q = q.bind(k);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("finding customers of business {business_id} by name keys {keys:?}"))?;
        rows.iter().map(customer).collect()
    }

    /// Live, named, non-temporary customers holding a key of `drive` AND a key of `probe`,
    /// for each pair (union), by id. The `drive` side is walked and each of its customers
    /// probed in the primary key for the other side, so put the rarer keys there.
    pub async fn customers_by_key_pairs<'a>(
        &self,
        business_id: i64,
        pairs: &'a [(Vec<String>, Vec<String>)],
    ) -> Result<Vec<Customer>> {
        let pairs: Vec<&'a (Vec<String>, Vec<String>)> = pairs
            .iter()
            .filter(|(d, p)| !d.is_empty() && !p.is_empty())
            .collect();
        if pairs.is_empty() {
            return Ok(vec![]);
        }
        let mut binds: Vec<&String> = Vec::new();
        let mut parts = Vec::new();
        for (drive, probe) in pairs {
            let mut marks = |keys: &'a [String]| -> String {
                let start = binds.len();
                binds.extend(keys.iter());
                (0..keys.len())
                    .map(|i| format!("${}", start + i + 2))
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let d = marks(drive);
            let p = marks(probe);
            parts.push(format!(
                "SELECT a.customer_id FROM customer_name_keys a WHERE a.business_id = $1 AND a.key IN ({d}) \
                 AND EXISTS (SELECT 1 FROM customer_name_keys b WHERE b.business_id = $1 AND b.key IN ({p}) \
                 AND b.customer_id = a.customer_id)"
            ));
        }
        let sql = format!(
            "SELECT {CUSTOMER_COLUMNS} FROM customers WHERE id IN ({}) AND merged_into IS NULL \
             AND is_temporary = 0 AND name IS NOT NULL ORDER BY id",
            parts.join(" UNION ")
        );
        let mut q = sqlx::query(&sql).bind(business_id);
        for b in &binds {
            q = q.bind(b.as_str());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("finding customers of business {business_id} by pairs of name keys"))?;
        rows.iter().map(customer).collect()
    }

    /// How many keyed customers carry each of these keys (for surname frequencies and
    /// whether a key is worth reading); keys nobody holds are left out. Read from
    /// `customer_name_key_counts`, which triggers keep exact (migration 0016).
    pub async fn name_key_counts(
        &self,
        business_id: i64,
        keys: &[String],
    ) -> Result<Vec<(String, i64)>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let marks: Vec<String> = (0..keys.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT key, n FROM customer_name_key_counts WHERE business_id = $1 AND key IN ({}) AND n > 0",
            marks.join(",")
        );
        let mut q = sqlx::query(&sql).bind(business_id);
        for k in keys {
            q = q.bind(k);
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .ctx(|| format!("counting name keys of business {business_id}"))?;
        rows.iter()
            .map(|r| Ok((col::<String>(r, "key")?, col::<i64>(r, "n")?)))
            .collect()
    }

    /// Named live customers of a business (the denominator of surname frequencies).
    pub async fn named_customer_count(&self, business_id: i64) -> Result<i64> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n FROM customers WHERE business_id = $1 AND name IS NOT NULL \
             AND merged_into IS NULL AND is_temporary = 0",
        )
        .bind(business_id)
        .fetch_one(&self.pool)
        .await
        .ctx(|| format!("counting customers of business {business_id}"))?;
        col(&r, "n")
    }

    /// Calls already linked to each of these customers (their history with the business).
    pub async fn prior_call_counts(&self, ids: &[i64]) -> Result<Vec<(i64, i64)>> {
        if ids.is_empty() {
            return Ok(vec![]);
        }
        let list: Vec<String> = ids.iter().map(i64::to_string).collect();
        let rows = sqlx::query(&format!(
            "SELECT customer_id, COUNT(*) AS n FROM calls WHERE customer_id IN ({}) GROUP BY customer_id",
            list.join(",")
        ))
        .fetch_all(&self.pool)
        .await
        .ctx(|| "counting earlier calls of candidates".into())?;
        rows.iter()
            .map(|r| Ok((col::<i64>(r, "customer_id")?, col::<i64>(r, "n")?)))
            .collect()
    }

    pub async fn set_call_link(&self, call_id: i64, u: &LinkUpdate) -> Result<()> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .ctx(|| format!("saving the link of call {call_id}"))?;
        set_call_link_in(&mut conn, call_id, u).await
    }

    pub async fn lead_by_phone(&self, business_id: i64, phone: &str) -> Result<Option<Lead>> {
        let r = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE business_id = $1 AND phone = $2"
        ))
        .bind(business_id)
        .bind(phone)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("finding the lead of business {business_id} by phone"))?;
        r.as_ref().map(lead).transpose()
    }

    pub async fn lead_by_external(
        &self,
        business_id: i64,
        external_id: &str,
    ) -> Result<Option<Lead>> {
        let r = sqlx::query(&format!(
            "SELECT {LEAD_COLUMNS} FROM leads WHERE business_id = $1 AND external_id = $2"
        ))
        .bind(business_id)
        .bind(external_id)
        .fetch_optional(&self.pool)
        .await
        .ctx(|| format!("finding lead {external_id:?}"))?;
        r.as_ref().map(lead).transpose()
    }

    /// Create the lead of (business, phone) or count one more call on it; write the lead
    /// id back on the call. Idempotent per call: a redelivered notify for a call that
    /// already carries this lead id does not count twice.
    pub async fn upsert_lead_for_call(
        &self,
        business_id: i64,
        call_id: i64,
        phone: &str,
        name: Option<&str>,
        customer_id: Option<i64>,
        source: &str,
    ) -> Result<(Lead, bool)> {
        let now = crate::now_ms();
        let mut tx = self.begin_write().await?;
        // A new lead comes back from its insert; only an existing one is read, and only then
        // does it matter whether this call was counted on it already (a redelivery).
        let inserted = sqlx::query(&format!(
            "INSERT INTO leads (business_id, customer_id, phone, name, source, call_count, created_at, updated_at, origin_call_id) \
             VALUES ($1,$2,$3,$4,$5,1,$6,$6,$7) ON CONFLICT (business_id, phone) DO NOTHING RETURNING {LEAD_COLUMNS}",
        ))
        .bind(business_id)
        .bind(customer_id)
        .bind(phone)
        .bind(name)
        .bind(source)
        .bind(now)
        // Which call created the lead: a redelivered notify can still tell "new" from "updated".
        .bind(call_id)
        .fetch_optional(&mut *tx)
        .await
        .ctx(|| format!("creating the lead for call {call_id}"))?;
        let created = inserted.is_some();
        let mut l = match inserted {
            Some(r) => lead(&r)?,
            None => {
                let r = sqlx::query(&format!(
                    "SELECT {LEAD_COLUMNS} FROM leads WHERE business_id = $1 AND phone = $2"
                ))
                .bind(business_id)
                .bind(phone)
                .fetch_one(&mut *tx)
                .await
                .ctx(|| format!("reading the lead for call {call_id}"))?;
                lead(&r)?
            }
        };
        if !created {
            let already: Option<i64> = sqlx::query("SELECT lead_id FROM calls WHERE id = $1")
                .bind(call_id)
                .fetch_one(&mut *tx)
                .await
                .ctx(|| format!("reading call {call_id}"))
                .and_then(|r| col(&r, "lead_id"))?;
            if already != Some(l.id) {
                sqlx::query(
                    "UPDATE leads SET call_count = call_count + 1, updated_at = $1, \
                     name = COALESCE(name, $2), customer_id = COALESCE(customer_id, $3) WHERE id = $4",
                )
                .bind(now)
                .bind(name)
                .bind(customer_id)
                .bind(l.id)
                .execute(&mut *tx)
                .await
                .ctx(|| format!("counting call {call_id} on lead {}", l.id))?;
                l.call_count += 1;
            }
        }
        sqlx::query("UPDATE calls SET lead_id = $1, updated_at = $2 WHERE id = $3")
            .bind(l.id)
            .bind(now)
            .bind(call_id)
            .execute(&mut *tx)
            .await
            .ctx(|| format!("writing lead {} back on call {call_id}", l.id))?;
        tx.commit()
            .await
            .ctx(|| format!("committing lead for call {call_id}"))?;
        Ok((l, created))
    }

    /// The call that created a lead (None for imported leads and leads older than 0011).
    pub async fn lead_origin_call(&self, lead_id: i64) -> Result<Option<i64>> {
        let r = sqlx::query("SELECT origin_call_id FROM leads WHERE id = $1")
            .bind(lead_id)
            .fetch_one(&self.pool)
            .await
            .ctx(|| format!("reading lead {lead_id}"))?;
        col(&r, "origin_call_id")
    }

    pub async fn set_lead_crm_id(&self, lead_id: i64, crm_id: &str) -> Result<()> {
        sqlx::query("UPDATE leads SET crm_id = $1, updated_at = $2 WHERE id = $3")
            .bind(crm_id)
            .bind(crate::now_ms())
            .bind(lead_id)
            .execute(&self.pool)
            .await
            .ctx(|| format!("saving the CRM id of lead {lead_id}"))?;
        Ok(())
    }

    /// Import a lead (from a CRM export or sync); existing (business, phone) rows are updated.
    pub async fn import_lead(
        &self,
        business_id: i64,
        phone: &str,
        name: Option<&str>,
        external_id: Option<&str>,
        status: &str,
    ) -> Result<bool> {
        let now = crate::now_ms();
        let r = sqlx::query(
            "INSERT INTO leads (business_id, phone, name, external_id, status, source, created_at, updated_at) \
             VALUES ($1,$2,$3,$4,$5,'import',$6,$6) ON CONFLICT (business_id, phone) DO UPDATE SET \
             name = COALESCE(excluded.name, leads.name), external_id = COALESCE(excluded.external_id, leads.external_id), \
             status = excluded.status, updated_at = excluded.updated_at RETURNING created_at",
        )
        .bind(business_id)
        .bind(phone)
        .bind(name)
        .bind(external_id)
        .bind(status)
        .bind(now)
        .fetch_one(&self.pool)
        .await
        .ctx(|| format!("importing lead {phone} of business {business_id}"))?;
        Ok(col::<i64>(&r, "created_at")? == now)
    }

    pub async fn watermark(&self, source: &str, business_id: i64) -> Result<Option<String>> {
        let r = sqlx::query("SELECT value FROM watermarks WHERE source = $1 AND business_id = $2")
            .bind(source)
            .bind(business_id)
            .fetch_optional(&self.pool)
            .await
            .ctx(|| format!("reading watermark {source}"))?;
        r.map(|r| col(&r, "value")).transpose()
    }

    pub async fn set_watermark(&self, source: &str, business_id: i64, value: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO watermarks (source, business_id, value, updated_at) VALUES ($1,$2,$3,$4) \
             ON CONFLICT (source, business_id) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(source)
        .bind(business_id)
        .bind(value)
        .bind(crate::now_ms())
        .execute(&self.pool)
        .await
        .ctx(|| format!("saving watermark {source}"))?;
        Ok(())
    }
}

/// [`Store::write_name_keys`] inside the caller's transaction.
async fn write_name_keys_in(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    business_id: i64,
    keyed: &[(i64, Vec<String>)],
) -> Result<()> {
    for chunk in keyed.chunks(5000) {
        let ids: Vec<String> = chunk.iter().map(|(id, _)| id.to_string()).collect();
        sqlx::query(&format!(
            "DELETE FROM customer_name_keys WHERE customer_id IN ({})",
            ids.join(",")
        ))
        .execute(&mut *conn)
        .await
        .ctx(|| format!("clearing name keys of business {business_id}"))?;
        insert_name_keys(dialect, &mut *conn, business_id, chunk).await?;
        sqlx::query(&format!(
            "UPDATE customers SET name_keys_version = {NAME_KEYS_VERSION} WHERE id IN ({})",
            ids.join(",")
        ))
        .execute(&mut *conn)
        .await
        .ctx(|| format!("marking customers of business {business_id} keyed"))?;
    }
    Ok(())
}

/// Insert name keys as one JSON array (`[[key, customer_id], …]`, sorted by key so the
/// index is filled in order): one statement per chunk, not one per row.
async fn insert_name_keys(
    dialect: Dialect,
    conn: &mut sqlx::AnyConnection,
    business_id: i64,
    keyed: &[(i64, Vec<String>)],
) -> Result<()> {
    let mut rows: Vec<(&str, i64)> = keyed
        .iter()
        .flat_map(|(id, keys)| keys.iter().map(move |k| (k.as_str(), *id)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    rows.sort_unstable();
    let json = serde_json::to_string(&rows)
        .map_err(|e| StoreError::Corrupt(format!("encoding name keys: {e}")))?;
    // Each row copies its customer's live name and phone (migration 0017; a trigger on
    // customers keeps them). On Postgres the customers are share-locked: a change to one
    // that commits while these rows are not yet visible to its trigger waits for them.
    let sql = match dialect {
        Dialect::Postgres => {
            "WITH e AS MATERIALIZED (SELECT e->>0 AS key, (e->>1)::BIGINT AS cid FROM json_array_elements($2::json) AS e), \
             c AS MATERIALIZED (SELECT id, CASE WHEN merged_into IS NULL AND is_temporary = 0 THEN name END AS live_name, phone \
             FROM customers WHERE id IN (SELECT DISTINCT cid FROM e) FOR SHARE) \
             INSERT INTO customer_name_keys (business_id, key, customer_id, live_name, phone) \
             SELECT $1, e.key, e.cid, c.live_name, c.phone FROM e JOIN c ON c.id = e.cid ORDER BY e.key, e.cid \
             ON CONFLICT DO NOTHING"
        }
        Dialect::Sqlite => {
            "INSERT INTO customer_name_keys (business_id, key, customer_id, live_name, phone) \
             SELECT $1, json_extract(j.value, '$[0]'), c.id, \
             CASE WHEN c.merged_into IS NULL AND c.is_temporary = 0 THEN c.name END, c.phone \
             FROM json_each($2) AS j JOIN customers c ON c.id = json_extract(j.value, '$[1]') \
             WHERE true ON CONFLICT DO NOTHING"
        }
    };
    sqlx::query(sql)
        .bind(business_id)
        .bind(json)
        .execute(&mut *conn)
        .await
        .ctx(|| format!("writing name keys of business {business_id}"))?;
    Ok(())
}

/// Write a call's link on a connection or inside a transaction.
pub(crate) async fn set_call_link_in(
    conn: &mut sqlx::AnyConnection,
    call_id: i64,
    u: &LinkUpdate,
) -> Result<()> {
    sqlx::query(
        // sqlx 0.8's Any driver binds a NULL f64 as float4 on Postgres and then fails the
        // next non-NULL f64 on that cached statement ("incorrect binary data format"):
        // bind a plain f64 always, with -1 standing for "no confidence".
        "UPDATE calls SET customer_id = $1, link_status = $2, link_method = $3, \
         link_confidence = CASE WHEN $4 < 0 THEN NULL ELSE $4 END, \
         extracted_name = $5, review_priority = $6, review_reason = $7, review_candidates = $8, updated_at = $9 WHERE id = $10",
    )
    .bind(u.customer_id)
    .bind(&u.link_status)
    .bind(u.link_method.as_deref())
    .bind(u.link_confidence.unwrap_or(-1.0))
    .bind(u.extracted_name.as_deref())
    .bind(u.review_priority)
    .bind(u.review_reason.as_deref())
    .bind(u.review_candidates.as_deref())
    .bind(crate::now_ms())
    .bind(call_id)
    .execute(&mut *conn)
    .await
    .ctx(|| format!("saving the link of call {call_id}"))?;
    Ok(())
}
