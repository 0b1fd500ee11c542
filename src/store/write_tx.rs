//! Write transactions, and SQLite's one writer at a time.
//!
//! SQLite lets one connection write at a time; the others wait in SQLite's busy handler,
//! which sleeps 1, 2, 5, 10… ms between tries. Under load the pipeline's writers (stage
//! starts and results, claims, acks) spent more time asleep there than writing: the
//! database broker on SQLite ran at about half its CPU. So on SQLite this process's
//! writers queue at a gate instead (first come, first served, woken the moment the writer
//! before them is done), and only other processes ever meet the busy handler.

use super::{Dialect, Result, StoreError};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// As long as SQLite's `busy_timeout` (store/mod.rs): the wait a writer had before.
const TURN_WAIT: Duration = Duration::from_secs(10);

/// The gate writers pass on SQLite (one permit); on Postgres nobody waits at it.
#[derive(Clone)]
pub(super) struct WriteGate(Option<Arc<Semaphore>>);

impl WriteGate {
    pub(super) fn new(dialect: Dialect) -> WriteGate {
        WriteGate((dialect == Dialect::Sqlite).then(|| Arc::new(Semaphore::new(1))))
    }

    /// Wait for this process's turn to write (at once on Postgres). Bounded like SQLite's
    /// own wait (`busy_timeout`): a writer stuck holding its turn fails the others with an
    /// error that says so, instead of hanging them.
    pub(super) async fn enter(&self) -> Result<WritePermit> {
        let Some(s) = &self.0 else {
            return Ok(WritePermit(None));
        };
        match tokio::time::timeout(TURN_WAIT, s.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(WritePermit(Some(p))),
            Ok(Err(_)) => unreachable!("the write gate is never closed"),
            Err(_) => Err(StoreError::Db {
                context: format!(
                    "waiting {} s for this process's turn to write to SQLite (another writer \
                     of this process holds it: a long transaction, or one left open)",
                    TURN_WAIT.as_secs()
                ),
                source: sqlx::Error::PoolTimedOut,
            }),
        }
    }
}

/// This process's turn to write on SQLite, until dropped.
pub struct WritePermit(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

/// A transaction that writes: the connection (`&mut *tx`) and, on SQLite, the write gate's
/// permit, released when it commits, rolls back or is dropped.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _permit: WritePermit,
}

impl WriteTx {
    pub(super) fn new(tx: sqlx::Transaction<'static, sqlx::Any>, permit: WritePermit) -> WriteTx {
        WriteTx {
            tx,
            _permit: permit,
        }
    }

    pub async fn commit(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> std::result::Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl Deref for WriteTx {
    type Target = sqlx::AnyConnection;
    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}
