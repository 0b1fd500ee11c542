//! Streaming ingest: JSONL read line by line (a file, stdin, `tail -f … |`), committed in
//! small batches — each batch's calls and their sync jobs in one transaction (the outbox
//! path) — and a partial batch committed as soon as the input pauses, so a slow writer's
//! every line is in the database moments after it was written.
//!
//! Memory is bounded whatever the input's size: one line (at most `max_line_bytes`; a
//! longer one is rejected without being held), one batch (at most `batch_lines` records
//! and `batch_bytes`), and the first `max_kept_rejections` rejections.
//!
//! A batch that fails to commit is replayed one line per transaction, so the lines before
//! the failing one are committed and the error names that line ("ingest stopped at line N").

use super::{parse_record_with, validate, CallRecord, IngestReport, Ingestor, Rejected};
use serde::Serialize;
use std::time::Duration;
use tokio::io::{AsyncBufRead, AsyncBufReadExt};
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// Records per transaction.
    pub batch_lines: usize,
    /// Bytes of input per transaction (large transcripts make few records heavy).
    pub batch_bytes: usize,
    /// Commit a partial batch when no line came for this long…
    pub idle_flush: Duration,
    /// …or when its first line has waited this long (a trickle that never pauses).
    pub max_wait: Duration,
    /// A longer line is rejected (and skipped without being held in memory).
    pub max_line_bytes: usize,
    /// Rejections kept in the report (all are counted and reported as they happen).
    pub max_kept_rejections: usize,
    /// Publish outbox rows after each batch (RabbitMQ), so a worker sees them at once.
    pub relay_each_batch: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions::for_limits(&validate::Limits::default())
    }
}

impl StreamOptions {
    /// Options whose line cap fits the largest record the limits accept (JSON escapes
    /// make a character up to 6 bytes; segments and fields add their own overhead).
    pub fn for_limits(l: &validate::Limits) -> StreamOptions {
        let chars = l
            .max_transcript_chars
            .saturating_add(l.max_segments.saturating_mul(64))
            .saturating_add(l.max_field_chars.saturating_mul(16))
            .saturating_add(l.max_url_chars);
        StreamOptions {
            batch_lines: 200,
            batch_bytes: 8 << 20,
            idle_flush: Duration::from_millis(100),
            max_wait: Duration::from_millis(1000),
            max_line_bytes: chars.saturating_mul(6).saturating_add(64 << 10),
            max_kept_rejections: 1000,
            relay_each_batch: true,
        }
    }
}

/// Where a stream is, for progress displays.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IngestProgress {
    pub lines: u64,
    pub bytes: u64,
    pub ingested: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub batches: u64,
}

/// What a stream reports while it runs.
#[derive(Debug)]
pub enum IngestEvent<'a> {
    /// A line was refused (nothing of it is written).
    Rejected(&'a Rejected),
    /// A batch committed (or a line was read: progress moves either way).
    Progress(&'a IngestProgress),
}

enum Line {
    Text(String),
    TooLong(usize),
    NotUtf8,
}

/// Lines of a reader, each at most `max` bytes. Cancel-safe: the only await is
/// `fill_buf`, which consumes nothing, and a partial line stays in `buf`, so a `select!`
/// that drops `next()` to commit an idle batch loses no input.
struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    /// Bytes of the current line when it went over `max` (its bytes are dropped).
    over: Option<usize>,
    max: usize,
    bytes: u64,
}

impl<R: AsyncBufRead + Unpin> Lines<R> {
    async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let avail = self.r.fill_buf().await?;
            if avail.is_empty() {
                if self.buf.is_empty() && self.over.is_none() {
                    return Ok(None);
                }
                return Ok(Some(self.take()));
            }
            let (chunk, done) = match avail.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (avail.len(), false),
            };
            let body = if done { &avail[..chunk - 1] } else { avail };
            match &mut self.over {
                Some(n) => *n += body.len(),
                None if self.buf.len() + body.len() > self.max => {
                    self.over = Some(self.buf.len() + body.len());
                    self.buf = Vec::new();
                }
                None => self.buf.extend_from_slice(body),
            }
            self.r.consume(chunk);
            self.bytes += chunk as u64;
            if done {
                return Ok(Some(self.take()));
            }
        }
    }

    fn take(&mut self) -> Line {
        if let Some(n) = self.over.take() {
            return Line::TooLong(n);
        }
        let bytes = std::mem::take(&mut self.buf);
        match String::from_utf8(bytes) {
            Ok(s) => Line::Text(s),
            Err(_) => Line::NotUtf8,
        }
    }
}

struct Pending {
    records: Vec<(usize, i64, CallRecord)>,
    bytes: usize,
    first_at: Instant,
    last_at: Instant,
}

impl<'a> Ingestor<'a> {
    /// Ingest JSONL from `reader` as it arrives (see the module doc). `on` hears every
    /// rejection and progress. The error of a failed commit says which line stopped the
    /// ingest, what was committed before it, and that running the same input again is safe.
    pub async fn ingest_stream<R: AsyncBufRead + Unpin>(
        &mut self,
        reader: R,
        opts: &StreamOptions,
        on: &mut dyn FnMut(IngestEvent<'_>),
    ) -> anyhow::Result<IngestReport> {
        let mut lines = Lines {
            r: reader,
            buf: Vec::new(),
            over: None,
            max: opts.max_line_bytes.max(1),
            bytes: 0,
        };
        let mut report = IngestReport::default();
        let mut progress = IngestProgress::default();
        let mut pending: Option<Pending> = None;
        let mut line_no = 0usize;
        loop {
            let next = match &pending {
                Some(p) => {
                    let due = (p.last_at + opts.idle_flush).min(p.first_at + opts.max_wait);
                    tokio::select! {
                        l = lines.next() => Some(l),
                        _ = tokio::time::sleep_until(due) => None,
                    }
                }
                None => Some(lines.next().await),
            };
            let Some(next) = next else {
                // The input paused: commit what came so far.
                if let Some(p) = pending.take() {
                    self.commit(p, &mut report, &mut progress, opts, on).await?;
                }
                continue;
            };
            let line = match next {
                Ok(Some(l)) => l,
                Ok(None) => break,
                Err(e) => {
                    if let Some(p) = pending.take() {
                        self.commit(p, &mut report, &mut progress, opts, on).await?;
                    }
                    anyhow::bail!(
                        "reading the input after line {line_no}: {e}. Everything before it was committed \
                         ({} calls, {} duplicates); run the same input again to continue (committed lines are skipped as duplicates)",
                        report.ingested,
                        report.duplicates
                    );
                }
            };
            line_no += 1;
            progress.lines = line_no as u64;
            progress.bytes = lines.bytes;
            let parsed = match line {
                Line::Text(s) => parse_record_with(&s, &self.limits).map(|r| (r, s.len())),
                Line::TooLong(n) => Err(format!(
                    "line is {n} bytes, over the limit of {} for one record (config [ingest] max_* bounds)",
                    lines.max
                )),
                Line::NotUtf8 => Err("line is not valid UTF-8 text".into()),
            };
            let rejected = match parsed {
                Ok((None, _)) => None,
                Ok((Some(r), len)) => match self.business_id(r.business.trim(), &mut report).await?
                {
                    None => Some(Self::unknown_business(r.business.trim())),
                    Some(bid) => {
                        let now = Instant::now();
                        let p = pending.get_or_insert_with(|| Pending {
                            records: Vec::new(),
                            bytes: 0,
                            first_at: now,
                            last_at: now,
                        });
                        p.records.push((line_no, bid, r));
                        p.bytes += len;
                        p.last_at = now;
                        None
                    }
                },
                Err(reason) => Some(reason),
            };
            if let Some(reason) = rejected {
                let r = Rejected {
                    line: line_no,
                    reason,
                };
                report.rejected_count += 1;
                progress.rejected = report.rejected_count;
                on(IngestEvent::Rejected(&r));
                if report.rejected.len() < opts.max_kept_rejections {
                    report.rejected.push(r);
                }
            }
            if pending
                .as_ref()
                .is_some_and(|p| p.records.len() >= opts.batch_lines || p.bytes >= opts.batch_bytes)
            {
                let p = pending.take().expect("checked above");
                self.commit(p, &mut report, &mut progress, opts, on).await?;
            } else if line_no.is_multiple_of(1000) {
                on(IngestEvent::Progress(&progress));
            }
        }
        if let Some(p) = pending.take() {
            self.commit(p, &mut report, &mut progress, opts, on).await?;
        }
        on(IngestEvent::Progress(&progress));
        Ok(report)
    }

    /// One batch in one transaction; on failure, line by line to commit what can be and
    /// to name the line that cannot.
    async fn commit(
        &mut self,
        p: Pending,
        report: &mut IngestReport,
        progress: &mut IngestProgress,
        opts: &StreamOptions,
        on: &mut dyn FnMut(IngestEvent<'_>),
    ) -> anyhow::Result<()> {
        let mut counted = IngestReport::default();
        let all: anyhow::Result<bool> = async {
            let mut tx = self.store.begin_write().await?;
            let mut any_job = false;
            for (_, bid, r) in &p.records {
                any_job |= self.ingest_in(&mut tx, *bid, r, &mut counted).await?.1;
            }
            tx.commit().await.map_err(|e| {
                anyhow::anyhow!("committing a batch of {} calls: {e}", p.records.len())
            })?;
            Ok(any_job)
        }
        .await;
        match all {
            Ok(any_job) => {
                report.add_counts(&counted);
                if any_job {
                    self.broker.enqueued();
                }
            }
            Err(first) => {
                tracing::warn!(error = %format!("{first:#}"), lines = p.records.len(), "ingest batch failed; retrying its lines one by one");
                for (line, _, r) in &p.records {
                    if let Err(e) = self.ingest(r, report).await {
                        let rejected_before =
                            report.rejected.iter().filter(|x| x.line < *line).count();
                        return Err(anyhow::anyhow!(
                            "ingest stopped at line {line}: {e:#}. Before it, {} calls were committed with their jobs \
                             ({} duplicates, {} rejected lines); nothing of line {line} was written. \
                             Fix the cause and run the same input again: committed lines are skipped as duplicates.",
                            report.ingested,
                            report.duplicates,
                            rejected_before,
                        ));
                    }
                }
            }
        }
        if opts.relay_each_batch && self.broker.kind() != "database" {
            // Best effort: what stays in the outbox is published by the final flush or a worker.
            if let Err(e) =
                crate::queue::outbox::flush(self.store, self.broker, Duration::from_secs(2)).await
            {
                tracing::debug!(error = %e, "outbox relay after an ingest batch failed");
            }
        }
        progress.batches += 1;
        progress.ingested = report.ingested;
        progress.duplicates = report.duplicates;
        on(IngestEvent::Progress(progress));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn all_lines(input: &[u8], max: usize) -> Vec<String> {
        let mut l = Lines {
            r: input,
            buf: Vec::new(),
            over: None,
            max,
            bytes: 0,
        };
        let mut out = Vec::new();
        while let Some(x) = l.next().await.unwrap() {
            out.push(match x {
                Line::Text(s) => s,
                Line::TooLong(n) => format!("<too long: {n}>"),
                Line::NotUtf8 => "<not utf-8>".into(),
            });
        }
        assert_eq!(l.bytes as usize, input.len());
        out
    }

    #[tokio::test]
    async fn lines_are_split_capped_and_checked() {
        assert_eq!(
            all_lines(b"a\nbb\n\nlast", 10).await,
            ["a", "bb", "", "last"]
        );
        assert_eq!(
            all_lines(b"short\nthis one is too long\nok\n", 10).await,
            ["short", "<too long: 20>", "ok"]
        );
        assert_eq!(
            all_lines(b"\xff\xfe\nfine\n", 10).await,
            ["<not utf-8>", "fine"]
        );
    }
}
