//! Per-business source-database sync: poll a table of call records in the business's own
//! database (SQLite, Postgres, MySQL/MariaDB) with a keyset watermark (watermark column, then id), and
//! ingest each row exactly as `callops ingest` ingests a JSONL record — same validation,
//! same duplicate handling. Columns are matched to the record's fields by name
//! (`from_number`/`to_number` are accepted for `from`/`to`); others are reported once and
//! ignored. A row that fails validation is reported with its id and skipped (the watermark
//! moves past it: fix the row in the source and bump its watermark column to have it
//! read again). The watermark moves after each batch is ingested, so a run cut short is
//! simply run again.

use super::ingest::{parse_record, IngestReport, Ingestor};
use crate::queue::Broker;
use crate::store::businesses::Business;
use crate::store::Store;
use serde::Serialize;
use serde_json::{json, Map, Value};
use sqlx::{Column, Row};

#[derive(Debug, Clone)]
pub struct SourceSpec {
    /// sqlite:PATH, postgres://… or mysql://… (also mariadb://…)
    pub url: String,
    pub table: String,
    pub id_column: String,
    /// An integer (e.g. epoch ms) or text column that sorts in change order.
    pub watermark_column: String,
    pub batch: u32,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SourceSyncReport {
    pub business: String,
    pub table: String,
    pub batches: u32,
    pub read: u64,
    pub ingested: u64,
    pub duplicates: u64,
    /// (row id, why it was not ingested)
    pub rejected: Vec<(String, String)>,
    /// Source columns that are not record fields.
    pub ignored_columns: Vec<String>,
    pub watermark_before: Option<Value>,
    pub watermark_after: Option<Value>,
}

const FIELDS: &[&str] = &[
    "external_id",
    "direction",
    "from",
    "to",
    "started_at",
    "duration_s",
    "audio_url",
    "language",
    "agent",
    "campaign",
    "lead_id",
    "source",
    "transcript",
];

fn identifier(what: &str, s: &str) -> anyhow::Result<String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.split('.').all(|p| {
            let mut c = p.chars();
            c.next()
                .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
                && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
        });
    if !ok {
        anyhow::bail!(
            "{what} {s:?} is not a plain SQL identifier (letters, digits, _ and schema.table)"
        );
    }
    Ok(s.to_string())
}

/// A column's value as JSON, whatever its SQL type.
fn cell(row: &sqlx::any::AnyRow, i: usize) -> Value {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map(Value::from).unwrap_or(Value::Null);
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return v.map(Value::from).unwrap_or(Value::Null);
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.map(Value::from).unwrap_or(Value::Null);
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return v.map(Value::from).unwrap_or(Value::Null);
    }
    // MySQL reports TEXT (and long CAST(… AS CHAR)) columns as blobs.
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return v
            .map(|b| Value::from(String::from_utf8_lossy(&b).into_owned()))
            .unwrap_or(Value::Null);
    }
    Value::Null
}

/// The source database: a pool, and how to speak to it.
struct Source {
    pool: sqlx::AnyPool,
    /// MySQL/MariaDB: `?` placeholders, and an explicit column list (below).
    mysql: bool,
}

fn is_mysql_url(url: &str) -> bool {
    url.starts_with("mysql://") || url.starts_with("mariadb://")
}

async fn open_source(url: &str) -> anyhow::Result<Source> {
    let fail = |e: &dyn std::fmt::Display| {
        anyhow::anyhow!(
            "cannot open the source database {}: {e}",
            crate::pipeline::providers::redact_url(url)
        )
    };
    if is_mysql_url(url) {
        sqlx::any::install_default_drivers();
        // sqlx's MySQL driver knows the mysql:// scheme only; MariaDB speaks the same protocol.
        let url = match url.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => url.to_string(),
        };
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(2)
            .acquire_timeout(std::time::Duration::from_secs(10))
            .connect(&url)
            .await
            .map_err(|e| fail(&e))?;
        return Ok(Source { pool, mysql: true });
    }
    let store = Store::connect(url, 2).await.map_err(|e| fail(&e))?;
    Ok(Source {
        pool: store.pool().clone(),
        mysql: false,
    })
}

/// MySQL's column list for `table`: sqlx's `Any` driver reads only integers, floats and
/// strings from MySQL, so every other type (TINYINT, DECIMAL, DATETIME, JSON, ENUM, …) is
/// cast to one of those; a `SELECT *` would fail on the first such column.
async fn mysql_columns(pool: &sqlx::AnyPool, table: &str) -> anyhow::Result<String> {
    let (schema, name) = match table.split_once('.') {
        Some((s, t)) => (Some(s), t),
        None => (None, table),
    };
    let sql = "SELECT CAST(COLUMN_NAME AS CHAR) AS name, CAST(DATA_TYPE AS CHAR) AS type                FROM information_schema.COLUMNS                WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";
    let rows = sqlx::query(sql)
        .bind(schema.map(str::to_string))
        .bind(name.to_string())
        .fetch_all(pool)
        .await
        .map_err(|e| {
            anyhow::anyhow!("reading the columns of {table} from the source database: {e}")
        })?;
    if rows.is_empty() {
        anyhow::bail!(
            "table {table} does not exist in the source database (or this login cannot see it)"
        );
    }
    let mut cols = Vec::with_capacity(rows.len());
    for r in &rows {
        let (name, ty) = (cell(r, 0), cell(r, 1));
        let name = name.as_str().unwrap_or_default().to_string();
        let ty = ty.as_str().unwrap_or_default().to_ascii_lowercase();
        // Names come from the catalog, but are quoted anyway (a column named `from`).
        let q = format!("`{}`", name.replace('`', "``"));
        cols.push(match ty.as_str() {
            "bigint" => q.clone(),
            "int" | "integer" | "mediumint" | "smallint" | "tinyint" | "year" | "bit" => {
                format!("CAST({q} AS SIGNED) AS {q}")
            }
            "double" | "real" => q.clone(),
            "float" | "decimal" | "numeric" => format!("CAST({q} AS DOUBLE) AS {q}"),
            _ => format!("CAST({q} AS CHAR) AS {q}"),
        });
    }
    Ok(cols.join(", "))
}

fn source_key(table: &str) -> String {
    format!("source-db:{table}")
}

pub async fn sync_source(
    store: &Store,
    broker: &dyn Broker,
    business: &Business,
    spec: &SourceSpec,
) -> anyhow::Result<SourceSyncReport> {
    let table = identifier("table", &spec.table)?;
    let id_col = identifier("id column", &spec.id_column)?;
    let wm_col = identifier("watermark column", &spec.watermark_column)?;
    let source = open_source(&spec.url).await?;
    let select = if source.mysql {
        match mysql_columns(&source.pool, &table).await {
            Ok(c) => c,
            Err(e) => {
                source.pool.close().await;
                return Err(e);
            }
        }
    } else {
        "*".to_string()
    };
    let key = source_key(&table);
    let before: Option<Value> = store
        .watermark(&key, business.id)
        .await?
        .and_then(|s| serde_json::from_str(&s).ok());
    let mut r = SourceSyncReport {
        business: business.name.clone(),
        table: table.clone(),
        watermark_before: before.clone(),
        watermark_after: before.clone(),
        ..Default::default()
    };
    let mut ingestor = Ingestor::new(store, broker);
    let mut mark = before;
    loop {
        let rows = match &mark {
            None => {
                sqlx::query(&format!(
                    "SELECT {select} FROM {table} ORDER BY {wm_col}, {id_col} LIMIT {}",
                    spec.batch.max(1)
                ))
                .fetch_all(&source.pool)
                .await
            }
            Some(m) => {
                // MySQL numbers no placeholders: `?` each, so the value is bound twice.
                let (after, binds) = if source.mysql {
                    (
                        format!("{wm_col} > ? OR ({wm_col} = ? AND {id_col} > ?)"),
                        vec![&m["value"], &m["value"], &m["id"]],
                    )
                } else {
                    (
                        format!("{wm_col} > $1 OR ({wm_col} = $1 AND {id_col} > $2)"),
                        vec![&m["value"], &m["id"]],
                    )
                };
                let q = format!(
                    "SELECT {select} FROM {table} WHERE {after} ORDER BY {wm_col}, {id_col} LIMIT {}",
                    spec.batch.max(1)
                );
                let mut q = sqlx::query(&q);
                for v in binds {
                    q = match v {
                        Value::Number(n) if n.is_i64() => q.bind(n.as_i64()),
                        other => q.bind(other.as_str().map(str::to_string).unwrap_or_else(|| other.to_string())),
                    };
                }
                q.fetch_all(&source.pool).await
            }
        }
        .map_err(|e| {
            anyhow::anyhow!(
                "reading {table} from the source database after watermark {mark:?}: {e} \
                 (the table needs columns {id_col:?} and {wm_col:?})"
            )
        })?;
        if rows.is_empty() {
            break;
        }
        r.batches += 1;
        let mut report = IngestReport::default();
        let mut last = None;
        for row in &rows {
            r.read += 1;
            let mut rec = Map::new();
            let (mut id, mut wm) = (Value::Null, Value::Null);
            for (i, col) in row.columns().iter().enumerate() {
                let name = col.name();
                let v = cell(row, i);
                if name == id_col {
                    id = v.clone();
                }
                if name == wm_col {
                    wm = v.clone();
                }
                let field = match name {
                    "from_number" => "from",
                    "to_number" => "to",
                    other => other,
                };
                if FIELDS.contains(&field) {
                    if v.is_null() {
                        continue;
                    }
                    // A transcript column holds the record's transcript object as JSON text.
                    let v = match (field, &v) {
                        ("transcript", Value::String(s)) => {
                            serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                        }
                        _ => v,
                    };
                    rec.insert(field.to_string(), v);
                } else if name != id_col
                    && name != wm_col
                    && !r.ignored_columns.iter().any(|c| c == name)
                {
                    r.ignored_columns.push(name.to_string());
                }
            }
            rec.insert("business".into(), json!(business.name));
            rec.entry("source")
                .or_insert_with(|| json!(format!("source-db:{table}")));
            let row_id = match &id {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match parse_record(&Value::Object(rec).to_string()) {
                Ok(Some(call)) => {
                    ingestor.ingest(&call, &mut report).await?;
                }
                Ok(None) => {}
                Err(why) => r.rejected.push((row_id, why)),
            }
            last = Some(json!({"value": wm, "id": id}));
        }
        r.ingested += report.ingested;
        r.duplicates += report.duplicates;
        if let Some(m) = last {
            store
                .set_watermark(&key, business.id, &m.to_string())
                .await?;
            r.watermark_after = Some(m.clone());
            mark = Some(m);
        }
        if (rows.len() as u32) < spec.batch.max(1) {
            break;
        }
    }
    source.pool.close().await;
    Ok(r)
}
