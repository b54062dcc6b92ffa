//! `genes`: parses an uploaded gene file into PostgreSQL.
//!
//! The upload is read from blob storage as a stream (never whole in memory),
//! decompressed if gzip (with a decompressed-size limit against gzip bombs),
//! cut into chunks and parsed on rayon (`crunch_compute::genes`). Sequences go
//! to PostgreSQL in binary COPY batches on `CRUNCH_GENES_WRITERS` writer
//! threads; the checkpoint (records consumed, running totals) follows the
//! longest run of committed batches, so a worker killed mid-file resumes
//! there without duplicates. A Bloom filter of names sends records whose name
//! may repeat an earlier one to a pending table, resolved in one statement at
//! the end (the first of each name wins). With the S3 backend the result
//! document is also written to the bucket.

use std::io::{self, BufReader, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crunch_blob::Blobs;
use crunch_compute::genes::{parse_stream, Format, Item, ParseError, ParseOptions, Problem, Stats};
use crunch_compute::{Control, Stop};
use crunch_domain::{Compression, GeneFormat, GeneProblem, GenesParams, GenesResult, JobError, OnInvalid};
use crunch_store::genes::{CopyRows, GeneFileRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Kernel, Kind, Outcome};

/// Settings of gene-file jobs.
#[derive(Debug, Clone)]
pub struct GenesConfig {
    /// Largest decompressed size of one file (gzip bombs stop here).
    pub max_decompressed_bytes: u64,
    /// Largest record (bytes of header and sequence).
    pub max_record_bytes: usize,
    /// Sequences stored per transaction (and checkpoint).
    pub batch_records: usize,
    /// Connections that write one file's batches in parallel.
    pub writers: usize,
    /// Problems listed in the result (all are counted).
    pub max_problems: usize,
}

/// What the checkpoint keeps besides `records_done`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Progress {
    /// Totals of the records after `resume_from` (lines and bytes unused).
    #[serde(flatten)]
    stats: Stats,
    /// Sequences in `gene_sequences` (before the end: those whose name
    /// was new for certain).
    stored: u64,
    /// Sequences waiting in `gene_sequences_pending` for the end of the file.
    #[serde(default)]
    pending: u64,
    duplicates: u64,
    /// The pending sequences were resolved (the file's last step).
    #[serde(default)]
    resolved: bool,
    problems: Vec<GeneProblem>,
}

/// A problem as the result shows it. PostgreSQL's text and jsonb cannot
/// hold NUL: shown as U+FFFD.
fn problem_view(p: &Problem) -> GeneProblem {
    let name = p.name.chars().take(200).map(|c| if c == '\0' { '\u{FFFD}' } else { c }).collect();
    GeneProblem { record: p.index, line: p.line, column: p.column, name, reason: p.reason.clone() }
}

/// Counts the bytes read from the upload (progress is bytes done / total).
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// An upload streamed from S3 as a blocking reader: a task gathers the
/// stream's pieces into buffers of 1 MiB and hands them over a channel
/// (handing each small piece to a blocking reader on its own costs a thread
/// wake-up). The local backend's file is read directly.
struct Gathered {
    rx: tokio::sync::mpsc::Receiver<io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl Gathered {
    const PIECE: usize = 1 << 20;

    fn spawn<S>(mut stream: S) -> Self
    where
        S: futures::Stream<Item = io::Result<bytes::Bytes>> + Send + Unpin + 'static,
    {
        use futures::StreamExt;
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        tokio::spawn(async move {
            let mut buf = bytes::BytesMut::with_capacity(Self::PIECE);
            loop {
                match stream.next().await {
                    Some(Ok(piece)) => {
                        buf.extend_from_slice(&piece);
                        if buf.len() >= Self::PIECE && tx.send(Ok(buf.split().freeze())).await.is_err() {
                            return;
                        }
                    }
                    Some(Err(e)) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                    None => {
                        if !buf.is_empty() {
                            let _ = tx.send(Ok(buf.freeze())).await;
                        }
                        return;
                    }
                }
            }
        });
        Self { rx, current: bytes::Bytes::new() }
    }
}

impl Read for Gathered {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(piece)) => self.current = piece,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current[..n]);
        bytes::Buf::advance(&mut self.current, n);
        Ok(n)
    }
}

/// Fails the read once more than `left` bytes came out (gzip bombs), with
/// the error kind `FileTooLarge` (what the job's error code is decided by).
struct Limited<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Read for Limited<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            return Err(io::Error::new(
                io::ErrorKind::FileTooLarge,
                format!("the decompressed data exceeds the limit of {} bytes (a gzip bomb?)", self.limit),
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// One transaction's worth of sequences, with the checkpoint that holds
/// once it and every batch before it are stored.
struct Batch {
    seq: u64,
    rows: CopyRows,
    pending: CopyRows,
    records_done: u64,
    progress: Progress,
}

fn failed(code: &str, message: impl Into<String>) -> Outcome {
    Outcome::Failed(JobError::new(code, message))
}

impl Kind for GenesParams {
    /// Not aborted on cancel: the parse stops at its next batch (the
    /// control's cancel flag) so that the writer ends cleanly.
    const KERNEL: Kernel<Self> = Kernel::Io {
        run: |p, ctl, shared| Box::pin(run(p, ctl, Arc::clone(&shared.genes), shared.blobs.clone(), shared.pool.clone())),
        abortable: false,
    };

    /// Large files take longer than other jobs: `CRUNCH_GENES_TIME_BUDGET_SECS`.
    fn budget(&self, cfg: &crate::Config) -> std::time::Duration {
        std::time::Duration::from_secs(cfg.genes.genes_time_budget_secs)
    }
}

/// Runs the job: async wrapper (blob access) around the blocking parse.
async fn run(p: GenesParams, ctl: Control, cfg: Arc<GenesConfig>, blobs: Blobs, pool: crunch_store::PgPool) -> Outcome {
    let file_id = p.file_id();
    let p2 = pool.clone();
    let file = match tokio::task::spawn_blocking(move || -> anyhow::Result<Option<GeneFileRow>> {
        let mut c = p2.get()?;
        Ok(crunch_store::genes::get(&mut c, file_id)?)
    })
    .await
    {
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return failed("not_found", "the gene file does not exist"),
        Ok(Err(e)) => return Outcome::Retry(format!("loading the gene file: {e}")),
        Err(e) => return Outcome::Retry(format!("loading the gene file: {e}")),
    };
    let (size, body) = match blobs.get_body(&file.object_key).await {
        Ok(Some(found)) => found,
        Ok(None) => return failed("upload_missing", "nothing was uploaded for this gene file"),
        Err(e) => return Outcome::Retry(format!("blob storage: {e}")),
    };
    if size == 0 {
        return failed("invalid_file", "the file is empty");
    }
    let key = file.object_key.clone();
    let p3 = pool.clone();
    let reader: Box<dyn Read + Send> = match body {
        crunch_blob::Body::File(f) => Box::new(f),
        crunch_blob::Body::Stream(stream) => Box::new(Gathered::spawn(stream)),
    };
    let outcome = tokio::task::spawn_blocking(move || parse_into_db(file, size, reader, &ctl, &cfg, &p3))
    .await
    .unwrap_or_else(|e| Outcome::Failed(JobError::new("internal_error", format!("the parse failed unexpectedly: {e}"))));
    // With S3, the result document goes to the bucket too (a presigned GET is
    // offered); the local backend serves it from the database only.
    match outcome {
        Outcome::Succeeded(mut result) if blobs.backend() == crunch_blob::Backend::S3 => {
            let result_key = format!("{}.result.json", key.trim_end_matches("/source"));
            match write_result_document(&blobs, &pool, file_id, &result_key).await {
                Ok(()) => result["result_key"] = json!(result_key),
                Err(e) => tracing::warn!(error = %e, "writing the result document to blob storage failed"),
            }
            Outcome::Succeeded(result)
        }
        other => other,
    }
}

/// Streams the sequences as the result JSON array into blob storage and
/// records where it is.
async fn write_result_document(blobs: &Blobs, pool: &crunch_store::PgPool, file_id: uuid::Uuid, key: &str) -> anyhow::Result<()> {
    let p = pool.clone();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, io::Error>>(4);
    let producer = tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if !crunch_store::genes::result_document(&p, file_id, |piece| tx.blocking_send(Ok(piece.into())).is_ok())? {
            anyhow::bail!("the upload stopped");
        }
        Ok(())
    });
    let body = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
    let stored = blobs.put_stream(key, Box::pin(body), u64::MAX).await;
    producer.await??;
    stored?;
    let p = pool.clone();
    let key = key.to_owned();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut c = p.get()?;
        Ok(crunch_store::genes::set_result_key(&mut c, file_id, &key)?)
    })
    .await??;
    Ok(())
}

fn format_of(file: &GeneFileRow) -> Format {
    match file.format {
        GeneFormat::Fasta => Format::Fasta,
        GeneFormat::Fastq => Format::Fastq,
        GeneFormat::Csv => Format::Csv,
    }
}

/// The names seen so far in a file, as a Bloom filter: `insert` says
/// "maybe seen" for every repeat and, rarely, for a new name. A repeat is
/// only a candidate (`resolve_pending` decides exactly), so memory stays
/// fixed however many records the file has. Blocked: a name's four bits lie
/// in one 64-bit word, so a lookup costs one cache miss, not four.
struct Seen {
    words: Vec<u64>,
    hasher: foldhash::quality::FixedState,
}

impl Seen {
    /// Sized for a file of `bytes` (decompressed, as far as known): two bits
    /// per byte (at least ten per record, which takes at least five bytes),
    /// between 1 Mbit and 128 Mbit (16 MiB).
    fn for_bytes(bytes: u64) -> Self {
        let bits = bytes.saturating_mul(2).clamp(1 << 20, 1 << 27).next_power_of_two();
        Self { words: vec![0; (bits / 64) as usize], hasher: foldhash::quality::FixedState::with_seed(0x9e37_79b9_7f4a_7c15) }
    }

    /// Adds the name; true if it may have been added before.
    fn insert(&mut self, name: &str) -> bool {
        use std::hash::BuildHasher;
        let h = self.hasher.hash_one(name);
        // The low bits pick the word (at most 2^21 of them), the top 24 bits
        // the four bits in it.
        let at = (h as usize) & (self.words.len() - 1);
        let word = &mut self.words[at];
        let bits = (0..4).fold(0u64, |m, i| m | 1 << ((h >> (40 + 6 * i)) & 63));
        let seen = *word & bits == bits;
        *word |= bits;
        seen
    }
}

/// Where parallel writers meet: the checkpoint moves to the end of the
/// longest run of stored batches from the start, so a resume never skips a
/// batch that a slower writer had not committed.
struct Checkpoints {
    next: u64,
    done: std::collections::BTreeMap<u64, (u64, Progress)>,
}

/// A writer thread: stores batches (one transaction each) as they come and
/// moves the checkpoint. The first error stops every writer.
fn writer(rx: Arc<Mutex<Receiver<Batch>>>, file_id: uuid::Uuid, pool: crunch_store::PgPool, error: Arc<Mutex<Option<String>>>, order: Arc<Mutex<Checkpoints>>) {
    let fail = |e: String| {
        if let Ok(mut slot) = error.lock() {
            slot.get_or_insert(e);
        }
    };
    let mut conn = None;
    loop {
        let Some(batch) = rx.lock().ok().and_then(|rx| rx.recv().ok()) else { return };
        if error.lock().map(|e| e.is_some()).unwrap_or(true) {
            return;
        }
        let attempt = (|| -> anyhow::Result<()> {
            let c = match &mut conn {
                Some(c) => c,
                None => conn.insert(pool.get()?),
            };
            crunch_store::genes::copy_batch(c, &batch.rows, &batch.pending)?;
            let mut guard = order.lock().map_err(|_| anyhow::anyhow!("a writer panicked"))?;
            let order = &mut *guard;
            order.done.insert(batch.seq, (batch.records_done, batch.progress));
            let mut latest = None;
            while let Some(entry) = order.done.remove(&order.next) {
                latest = Some(entry);
                order.next += 1;
            }
            // Written under the lock, so checkpoints reach the row in order.
            if let Some((records_done, progress)) = latest {
                crunch_store::genes::advance_checkpoint(c, file_id, records_done as i64, &serde_json::to_value(&progress)?)?;
            }
            Ok(())
        })();
        if let Err(e) = attempt {
            return fail(e.to_string());
        }
    }
}

/// The blocking part: decompress, parse, store.
fn parse_into_db<R: Read + Send>(file: GeneFileRow, size: u64, reader: R, ctl: &Control, cfg: &GenesConfig, pool: &crunch_store::PgPool) -> Outcome {
    let started = Instant::now();
    let read = Arc::new(AtomicU64::new(0));
    let buffered = BufReader::with_capacity(1 << 20, Counting { inner: reader, count: Arc::clone(&read) });
    let max = cfg.max_decompressed_bytes;
    let input: Box<dyn Read + Send> = if file.compression == Some(Compression::Gzip) {
        Box::new(Limited { inner: flate2::read::MultiGzDecoder::new(buffered), left: max, limit: max })
    } else {
        Box::new(Limited { inner: buffered, left: max, limit: max })
    };
    // Resuming: records before the checkpoint are parsed again but skipped.
    let resume_from = file.records_done.max(0) as u64;
    let mut progress: Progress = if resume_from > 0 {
        file.checkpoint.clone().and_then(|c| serde_json::from_value(c).ok()).unwrap_or_default()
    } else {
        Progress::default()
    };
    if resume_from > 0 {
        tracing::info!(resume_from, "resuming the gene file after its last committed batch");
    }
    let fail_on_invalid = file.on_invalid == OnInvalid::Fail;
    // What batches after the checkpoint stored is stored again below.
    if let Err(e) = pool.get().map_err(anyhow::Error::from).and_then(|mut c| Ok(crunch_store::genes::drop_after(&mut c, file.id, resume_from as i64)?)) {
        return Outcome::Retry(format!("preparing to store sequences: {e}"));
    }
    let write_error = Arc::new(Mutex::new(None::<String>));
    let writers = cfg.writers.max(1);
    let (tx, rx) = sync_channel::<Batch>(writers);
    let rx = Arc::new(Mutex::new(rx));
    let order = Arc::new(Mutex::new(Checkpoints { next: 0, done: Default::default() }));
    let writer_threads: Vec<_> = (0..writers)
        .map(|_| {
            let (rx, pool, error, order, id) = (Arc::clone(&rx), pool.clone(), Arc::clone(&write_error), Arc::clone(&order), file.id);
            std::thread::spawn(move || writer(rx, id, pool, error, order))
        })
        .collect();
    drop(rx);
    let mut seen = Seen::for_bytes(if file.compression == Some(Compression::Gzip) { size.saturating_mul(4) } else { size });
    let (mut rows, mut pending, mut batches) = (CopyRows::default(), CopyRows::default(), 0u64);
    let mut records_done = resume_from;
    let mut invalid_problem: Option<GeneProblem> = None;
    let mut opts = ParseOptions::new(format_of(&file));
    opts.max_record_bytes = cfg.max_record_bytes;
    // A parsed record takes about 150 bytes besides its data: 4 MiB chunks of
    // tiny records held 170 MB of records per batch of chunks.
    opts.chunk_bytes = 1 << 20;
    // Owns the sender: dropping it ends the writers.
    let mut send = move |rows: &mut CopyRows, pending: &mut CopyRows, records_done: u64, progress: &Progress| {
        let batch = Batch { seq: batches, rows: std::mem::take(rows), pending: std::mem::take(pending), records_done, progress: progress.clone() };
        batches += 1;
        tx.send(batch).map_err(|_| "the writers stopped".to_owned())
    };
    let parsed = parse_stream(input, &opts, ctl, |items, _| {
        if let Some(e) = write_error.lock().ok().and_then(|e| e.clone()) {
            return Err(format!("storing sequences failed: {e}"));
        }
        for it in items {
            let index = match &it {
                Item::Record(r) => r.index,
                Item::Problem(p) => p.index,
            };
            if index < resume_from {
                // Stored before: only the names are needed, to know repeats.
                if let Item::Record(r) = &it {
                    seen.insert(&r.name);
                }
                continue;
            }
            progress.stats.add_item(&it);
            match it {
                Item::Record(r) => {
                    let (to, count) = if seen.insert(&r.name) { (&mut pending, &mut progress.pending) } else { (&mut rows, &mut progress.stored) };
                    to.push_with(file.id, r.index as i64, r.line as i64, &r.name, |out| r.write_sequence(out), r.length as i64, r.gc());
                    *count += 1;
                }
                Item::Problem(p) => {
                    let view = problem_view(&p);
                    if fail_on_invalid {
                        invalid_problem = Some(view);
                        return Err("an invalid record".into());
                    }
                    if progress.problems.len() < cfg.max_problems {
                        progress.problems.push(view);
                    }
                }
            }
            records_done = index + 1;
            if rows.rows() + pending.rows() >= cfg.batch_records || rows.bytes() + pending.bytes() >= crunch_store::genes::BATCH_BYTES {
                send(&mut rows, &mut pending, records_done, &progress)?;
            }
        }
        ctl.progress((read.load(Ordering::Relaxed) as f64 / size as f64).min(0.999));
        Ok(())
    });
    // The last batch (also when empty: it carries the final checkpoint).
    if parsed.is_ok() {
        let _ = send(&mut rows, &mut pending, records_done, &progress);
    }
    drop(send);
    for w in writer_threads {
        let _ = w.join();
    }
    if let Some(e) = write_error.lock().ok().and_then(|e| e.clone()) {
        return Outcome::Retry(format!("storing sequences failed: {e}"));
    }
    let stored = progress.stored;
    let stats: Stats = match parsed {
        Ok(s) => s,
        Err(ParseError::Stopped(Stop::Cancelled)) => return Outcome::Cancelled,
        Err(ParseError::Stopped(Stop::TimeBudgetExceeded)) => {
            return Outcome::Failed(
                JobError::new("time_budget_exceeded", format!("the time budget ran out after {} ms; {} sequences were stored", started.elapsed().as_millis(), stored))
                    .with_details(json!({"records_done": records_done, "stored": stored})),
            )
        }
        Err(ParseError::Sink(_)) if invalid_problem.is_some() => {
            let p = invalid_problem.unwrap_or_else(|| GeneProblem { record: 0, line: 0, column: 0, name: String::new(), reason: String::new() });
            return Outcome::Failed(
                JobError::new("invalid_record", format!("record {} (line {}, column {}) is invalid: {}; the file's policy is to fail", p.record, p.line, p.column, p.reason))
                    .with_details(json!({"problem": p})),
            );
        }
        Err(ParseError::Sink(e)) => return Outcome::Retry(e),
        Err(ParseError::Io(e)) if e.kind() == io::ErrorKind::Other => return Outcome::Retry(format!("reading the upload: {e}")),
        Err(ParseError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return failed("invalid_file", format!("the compressed data ends early (a truncated gzip file?): {e}"))
        }
        Err(ParseError::Io(e)) if e.kind() == io::ErrorKind::FileTooLarge => return failed("too_large", e.to_string()),
        Err(ParseError::Io(e)) => return failed("invalid_file", format!("the file could not be read: {e}")),
        Err(e @ (ParseError::RecordTooLong(_) | ParseError::Empty | ParseError::Format(_))) => return failed("invalid_file", e.to_string()),
    };
    if progress.stats.valid == 0 {
        let why = progress.problems.first().map(|p| format!(": record {} (line {}): {}", p.record, p.line, p.reason)).unwrap_or_default();
        return Outcome::Failed(
            JobError::new("invalid_file", format!("the file holds no valid {} record{why}", file.format))
                .with_details(json!({"problems": progress.problems, "invalid": progress.stats.invalid})),
        );
    }
    if !progress.resolved {
        let (pending, resolving) = (progress.pending, Instant::now());
        let resolved = pool.get().map_err(anyhow::Error::from).and_then(|mut c| {
            Ok(crunch_store::genes::resolve_pending(&mut c, file.id, |kept| {
                progress.stored += kept;
                progress.duplicates += progress.pending - kept;
                progress.pending = 0;
                progress.resolved = true;
                serde_json::to_value(&progress).unwrap_or_default()
            })?)
        });
        match resolved {
            Ok(kept) => tracing::info!(pending, kept, ms = resolving.elapsed().as_millis() as u64, "resolved the records whose names may repeat"),
            Err(e) => return Outcome::Retry(format!("resolving repeated names failed: {e}")),
        }
    }
    let gc = if progress.stats.bases > 0 { progress.stats.gc_bases as f64 / progress.stats.bases as f64 } else { 0.0 };
    super::succeeded(GenesResult {
        file_id: file.id,
        format: file.format,
        compression: file.compression,
        records: progress.stats.valid + progress.stats.invalid,
        stored: progress.stored,
        invalid: progress.stats.invalid,
        duplicates: progress.duplicates,
        whitespace_stripped: progress.stats.whitespace_stripped,
        bases: progress.stats.bases,
        gc: (gc * 1e6).round() / 1e6,
        min_length: progress.stats.min_length,
        max_length: progress.stats.max_length,
        mean_length: if progress.stats.valid > 0 { (progress.stats.bases as f64 / progress.stats.valid as f64 * 10.0).round() / 10.0 } else { 0.0 },
        bytes: size,
        decompressed_bytes: stats.bytes,
        lines: stats.lines,
        problems: progress.problems,
        resumed_from: resume_from,
        elapsed_ms: started.elapsed().as_millis() as u64,
        result_key: None,
    })
}

#[cfg(test)]
mod tests {
    use super::Seen;

    #[test]
    fn the_bloom_filter_never_misses_a_repeat_and_rarely_cries_wolf() {
        let mut seen = Seen::for_bytes(20_000_000);
        let names: Vec<String> = (0..1_000_000).map(|i| format!("r{i}")).collect();
        let false_positives = names.iter().filter(|n| seen.insert(n)).count();
        assert!(names.iter().all(|n| seen.insert(n)), "every repeat is seen");
        // 1 M names in 64 Mbit: about 64 bits a name.
        assert!(false_positives < 1_000, "{false_positives} false positives");
    }
}
