//! Gene files: FASTA, FASTQ and CSV parsed as a stream.
//!
//! A reader thread cuts the (already decompressed) byte stream into chunks at
//! record boundaries ([`Chunker`]); batches of chunks are parsed in parallel
//! on rayon ([`parse_chunk`]) and handed on in file order, with global record
//! indices and line numbers, to a sink (the worker stores them in batches).
//!
//! Every sequence is checked against the IUPAC nucleotide alphabet
//! (`ACGTURYSWKMBDHVN` and `-`, any case) by a vectorisable scan that also
//! counts G and C; only a record with something else in it (whitespace, other
//! letters, bad bytes) takes the byte-by-byte path, which strips and counts
//! whitespace and reports the first bad byte with its line and column.

use std::borrow::Cow;
use std::io::{self, Read};
use std::sync::Arc;

use rayon::prelude::*;

use crate::{Control, Stop};

/// The formats understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Fasta,
    Fastq,
    Csv,
}

/// A record's sequence: still in its chunk (the common case: only line
/// breaks to drop, done when it is stored) or cleaned already.
#[derive(Debug, Clone, PartialEq)]
pub enum Seq {
    Raw { chunk: Arc<Vec<u8>>, start: usize, end: usize, breaks: bool },
    Owned(String),
}

/// One parsed sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 0-based position of the record in the file (bad records count too).
    pub index: u64,
    /// 1-based line of the record's header (FASTA, FASTQ) or row (CSV).
    pub line: u64,
    pub name: String,
    pub seq: Seq,
    pub length: u64,
    /// G + C count (case-insensitive).
    pub gc_count: u64,
    /// Whitespace characters stripped from inside the sequence.
    pub whitespace: u64,
}

impl Record {
    pub fn gc(&self) -> f64 {
        if self.length == 0 {
            0.0
        } else {
            self.gc_count as f64 / self.length as f64
        }
    }

    /// Appends the sequence's bytes (as [`Record::sequence`] gives them) to
    /// `out`, straight from the chunk: no string in between.
    pub fn write_sequence(&self, out: &mut Vec<u8>) {
        match &self.seq {
            Seq::Owned(s) => out.extend_from_slice(s.as_bytes()),
            Seq::Raw { chunk, start, end, breaks: false } => out.extend_from_slice(&chunk[*start..*end]),
            Seq::Raw { chunk, start, end, breaks: true } => {
                for piece in chunk[*start..*end].split(|&b| b == b'\n') {
                    out.extend_from_slice(piece);
                }
            }
        }
    }

    /// The sequence as written (case kept), line breaks and whitespace removed.
    pub fn sequence(&self) -> Cow<'_, str> {
        match &self.seq {
            Seq::Owned(s) => Cow::Borrowed(s.as_str()),
            Seq::Raw { chunk, start, end, breaks } => {
                let raw = &chunk[*start..*end];
                // The fast path admitted only ASCII letters and line feeds.
                if !breaks {
                    return Cow::Borrowed(std::str::from_utf8(raw).unwrap_or_default());
                }
                let mut out = String::with_capacity(raw.len());
                for piece in raw.split(|&b| b == b'\n') {
                    out.push_str(std::str::from_utf8(piece).unwrap_or_default());
                }
                Cow::Owned(out)
            }
        }
    }
}

/// A record that could not be taken, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub index: u64,
    /// 1-based line and column (column 0 when the whole record is at fault).
    pub line: u64,
    pub column: u64,
    pub name: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Record(Record),
    Problem(Problem),
}

/// What a chunk parse produced, with chunk-relative indices and lines.
#[derive(Debug, Default)]
pub struct ChunkOut {
    pub items: Vec<Item>,
    /// Line breaks in the chunk.
    pub lines: u64,
}

/// Parser settings.
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    pub format: Format,
    /// Bytes read per chunk (a chunk grows past this only to finish a record).
    pub chunk_bytes: usize,
    /// Largest record; a longer one fails the file (it would not fit in memory
    /// bounds or in a database row).
    pub max_record_bytes: usize,
    /// Chunks parsed at once (in parallel).
    pub chunks_per_batch: usize,
}

impl ParseOptions {
    pub fn new(format: Format) -> Self {
        Self { format, chunk_bytes: 4 << 20, max_record_bytes: 64 << 20, chunks_per_batch: 2 * rayon::current_num_threads().max(1) }
    }
}

/// Why a file could not be parsed at all.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("a record is longer than the limit of {0} bytes")]
    RecordTooLong(usize),
    #[error("the file is empty")]
    Empty,
    #[error("{0}")]
    Format(String),
    #[error("stopped")]
    Stopped(Stop),
    #[error("{0}")]
    Sink(String),
}

// ------------------------------------------------------------------ alphabet

/// IUPAC nucleotide codes and the gap, both cases.
const fn iupac_table() -> [bool; 256] {
    let mut t = [false; 256];
    let codes = b"ACGTURYSWKMBDHVN-";
    let mut i = 0;
    while i < codes.len() {
        t[codes[i] as usize] = true;
        t[codes[i].to_ascii_lowercase() as usize] = true;
        i += 1;
    }
    t
}
static IUPAC: [bool; 256] = iupac_table();

/// One pass over raw sequence bytes (line feeds included): G+C count, line
/// feeds, and whether anything other than `ACGTN`, either case, or a line feed
/// occurs (a carriage return, whitespace, other codes, bad bytes: the slow
/// path sorts them out). Written as fixed-width blocks with byte counters so
/// that the compiler vectorises it.
#[inline]
pub fn scan(raw: &[u8]) -> (u64, u64, bool) {
    #[inline(always)]
    fn step(x: u8) -> (u8, u8, u8) {
        let l = x | 0x20;
        let gc = (l == b'c') | (l == b'g');
        let lf = x == b'\n';
        let ok = gc | (l == b'a') | (l == b't') | (l == b'n') | lf;
        (gc as u8, lf as u8, !ok as u8)
    }
    let (mut gc, mut breaks, mut other) = (0u64, 0u64, 0u8);
    let mut blocks = raw.chunks_exact(128);
    for block in &mut blocks {
        let (mut g, mut b, mut o) = (0u8, 0u8, 0u8);
        for &x in block {
            let (dg, db, d_o) = step(x);
            g += dg;
            b += db;
            o |= d_o;
        }
        gc += g as u64;
        breaks += b as u64;
        other |= o;
    }
    for &x in blocks.remainder() {
        let (dg, db, d_o) = step(x);
        gc += dg as u64;
        breaks += db as u64;
        other |= d_o;
    }
    (gc, breaks, other != 0)
}

/// How a record's sequence checked out.
enum Checked {
    /// Only `ACGTN` and line feeds: nothing copied yet.
    Fast { gc: u64, newlines: u64, len: u64 },
    /// Cleaned (whitespace or carriage returns dropped, other codes kept).
    Slow { seq: String, gc: u64, whitespace: u64, newlines: u64 },
    /// A bad byte: line offset from the first sequence line, 1-based column, why.
    Bad { line: u64, column: u64, reason: String },
}

fn check(raw: &[u8]) -> Checked {
    let (gc, newlines, other) = scan(raw);
    if !other {
        return Checked::Fast { gc, newlines, len: raw.len() as u64 - newlines };
    }
    let (mut seq, mut gc, mut ws) = (Vec::with_capacity(raw.len()), 0u64, 0u64);
    let (mut line, mut col) = (0u64, 0u64);
    for &b in raw {
        col += 1;
        match b {
            b'\n' => {
                line += 1;
                col = 0;
            }
            b'\r' => {}
            b' ' | b'\t' | 0x0b | 0x0c => ws += 1,
            _ if IUPAC[b as usize] => {
                gc += matches!(b | 0x20, b'c' | b'g') as u64;
                seq.push(b);
            }
            _ => {
                let reason = if b.is_ascii_graphic() {
                    format!("'{}' is not an IUPAC nucleotide code", b as char)
                } else {
                    format!("byte 0x{b:02x} is not an IUPAC nucleotide code (binary or non-ASCII data)")
                };
                return Checked::Bad { line, column: col, reason };
            }
        }
    }
    Checked::Slow { seq: String::from_utf8(seq).unwrap_or_default(), gc, whitespace: ws, newlines: line }
}

fn name_of(bytes: &[u8]) -> String {
    let b = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(b).trim().to_owned()
}

fn newlines(b: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', b).count() as u64
}

/// Start of the next line at or after `from` that begins with `marker`.
fn next_record(buf: &[u8], from: usize, marker: u8) -> usize {
    let mut at = from;
    while let Some(i) = memchr::memchr(marker, &buf[at..]) {
        let i = at + i;
        if i == 0 || buf[i - 1] == b'\n' {
            return i;
        }
        at = i + 1;
    }
    buf.len()
}

/// Builds the item of one record from its parts (`start..end`: the raw
/// sequence in `chunk`); also returns the line feeds inside it.
fn item(index: u64, line: u64, name: String, chunk: &Arc<Vec<u8>>, start: usize, end: usize, seq_line: u64) -> (Item, u64) {
    let raw = &chunk[start..end];
    let (record, newlines) = match check(raw) {
        Checked::Fast { gc, newlines, len } => (
            Record { index, line, name, seq: Seq::Raw { chunk: Arc::clone(chunk), start, end, breaks: newlines > 0 }, length: len, gc_count: gc, whitespace: 0 },
            newlines,
        ),
        Checked::Slow { seq, gc, whitespace, newlines } => {
            (Record { index, line, name, length: seq.len() as u64, seq: Seq::Owned(seq), gc_count: gc, whitespace }, newlines)
        }
        Checked::Bad { line: dl, column, reason } => {
            return (Item::Problem(Problem { index, line: seq_line + dl, column, name, reason }), newlines(raw));
        }
    };
    if record.length == 0 {
        let reason = if record.name.is_empty() { "an empty record" } else { "a header without a sequence" };
        return (Item::Problem(Problem { index, line, column: 0, name: record.name, reason: reason.into() }), newlines);
    }
    if record.name.contains('\0') {
        let reason = "a name with a NUL byte (a stored name cannot hold one)";
        return (Item::Problem(Problem { index, line, column: 0, name: record.name, reason: reason.into() }), newlines);
    }
    (Item::Record(record), newlines)
}

/// Parses one chunk (records whole). Lines and indices are relative: line 1
/// is the chunk's first line, index 0 its first record.
pub fn parse_chunk(chunk: &Arc<Vec<u8>>, format: Format) -> ChunkOut {
    let buf: &[u8] = chunk;
    let mut out = ChunkOut { items: Vec::new(), lines: 0 };
    let mut line = 1u64;
    let mut pos = 0usize;
    let mut index = 0u64;
    match format {
        Format::Fasta => {
            while pos < buf.len() {
                if buf[pos] != b'>' {
                    // Text before the first header (only at the start of a file).
                    let next = next_record(buf, pos, b'>');
                    let skipped = &buf[pos..next];
                    if !skipped.iter().all(|b| b.is_ascii_whitespace()) {
                        out.items.push(Item::Problem(Problem {
                            index,
                            line,
                            column: 1,
                            name: String::new(),
                            reason: "sequence data before the first '>' header".into(),
                        }));
                        index += 1;
                    }
                    line += newlines(skipped);
                    pos = next;
                    continue;
                }
                let header_end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
                let name = name_of(&buf[pos + 1..header_end]);
                let seq_start = (header_end + 1).min(buf.len());
                let next = next_record(buf, seq_start, b'>');
                let (it, nl) = item(index, line, name, chunk, seq_start, next, line + 1);
                out.items.push(it);
                index += 1;
                line += 1 + nl;
                pos = next;
            }
            out.lines = line - 1;
        }
        Format::Fastq => {
            out.lines = newlines(buf);
            // Line i spans starts[i]..ends[i] (line feed excluded).
            let next_line = |pos: &mut usize| -> Option<(usize, usize)> {
                if *pos >= buf.len() {
                    return None;
                }
                let start = *pos;
                let end = memchr::memchr(b'\n', &buf[start..]).map_or(buf.len(), |i| start + i);
                *pos = end + 1;
                Some((start, end))
            };
            while let Some((hs, he)) = next_line(&mut pos) {
                let header = &buf[hs..he];
                let header = header.strip_suffix(b"\r").unwrap_or(header);
                if header.is_empty() {
                    line += 1;
                    continue;
                }
                let (ss, se) = next_line(&mut pos).unwrap_or((buf.len(), buf.len()));
                let plus = next_line(&mut pos).map_or(&buf[0..0], |(a, b)| &buf[a..b]);
                let qual = next_line(&mut pos).map_or(&buf[0..0], |(a, b)| &buf[a..b]);
                let qual = qual.strip_suffix(b"\r").unwrap_or(qual);
                let se = if se > ss && buf[se - 1] == b'\r' { se - 1 } else { se };
                let start = line;
                line += 4;
                let name = name_of(header.get(1..).unwrap_or_default());
                let it = if header[0] != b'@' {
                    Item::Problem(Problem { index, line: start, column: 1, name, reason: "a FASTQ record must start with an '@' header line".into() })
                } else if !plus.starts_with(b"+") {
                    Item::Problem(Problem { index, line: start + 2, column: 1, name, reason: "the third line of a FASTQ record must start with '+'".into() })
                } else {
                    match item(index, start, name, chunk, ss, se, start + 1).0 {
                        Item::Record(r) if r.length as usize != qual.len() => Item::Problem(Problem {
                            index,
                            line: start + 3,
                            column: 0,
                            reason: format!("{} quality values for {} bases", qual.len(), r.length),
                            name: r.name,
                        }),
                        other => other,
                    }
                };
                out.items.push(it);
                index += 1;
            }
        }
        Format::Csv => {
            out.lines = newlines(buf);
            while pos < buf.len() {
                let row_start = pos;
                let row_end = memchr::memchr(b'\n', &buf[pos..]).map_or(buf.len(), |i| pos + i);
                pos = row_end + 1;
                let this = line;
                line += 1;
                let row = &buf[row_start..row_end];
                let row = row.strip_suffix(b"\r").unwrap_or(row);
                if row.iter().all(|b| b.is_ascii_whitespace()) {
                    continue;
                }
                let it = match split_csv_row(row) {
                    None => Item::Problem(Problem { index, line: this, column: 0, name: name_of(row), reason: "a row that is not 'gene name,sequence'".into() }),
                    Some((name, offset, len)) => match item(index, this, name, chunk, row_start + offset, row_start + offset + len, this).0 {
                        // columns of the sequence field are relative to the field
                        Item::Problem(mut p) if p.column > 0 => {
                            p.column += offset as u64;
                            Item::Problem(p)
                        }
                        other => other,
                    },
                };
                out.items.push(it);
                index += 1;
            }
        }
    }
    out
}

/// Splits a CSV row into the name and the sequence field's offset and length
/// in the row. Either field may be quoted (`""` inside quotes is a quote);
/// None when the row has no separating comma.
fn split_csv_row(row: &[u8]) -> Option<(String, usize, usize)> {
    let (name, rest) = if row.first() == Some(&b'"') {
        let mut name = Vec::new();
        let mut i = 1;
        loop {
            match *row.get(i)? {
                b'"' if row.get(i + 1) == Some(&b'"') => {
                    name.push(b'"');
                    i += 2;
                }
                b'"' => break,
                b => {
                    name.push(b);
                    i += 1;
                }
            }
        }
        if row.get(i + 1) != Some(&b',') {
            return None;
        }
        (name_of(&name), i + 2)
    } else {
        let c = memchr::memchr(b',', row)?;
        (name_of(&row[..c]), c + 1)
    };
    let field = &row[rest..];
    if field.len() >= 2 && field[0] == b'"' && field[field.len() - 1] == b'"' {
        Some((name, rest + 1, field.len() - 2))
    } else {
        Some((name, rest, field.len()))
    }
}

/// The CSV header row the format requires.
pub const CSV_HEADER: &str = "gene name,sequence";

/// Cuts a byte stream into chunks that end on record boundaries.
pub struct Chunker<R> {
    r: R,
    format: Format,
    buf: Vec<u8>,
    eof: bool,
    chunk_bytes: usize,
    max_record: usize,
    /// Bytes read from the stream so far.
    pub bytes_read: u64,
}

impl<R: Read> Chunker<R> {
    pub fn new(r: R, opts: &ParseOptions) -> Self {
        Self { r, format: opts.format, buf: Vec::new(), eof: false, chunk_bytes: opts.chunk_bytes.max(1024), max_record: opts.max_record_bytes, bytes_read: 0 }
    }

    fn fill(&mut self, target: usize) -> io::Result<()> {
        if self.buf.capacity() < target {
            self.buf.reserve(target - self.buf.len());
        }
        while !self.eof && self.buf.len() < target {
            // read_to_end fills spare capacity without zeroing it first.
            let want = (target - self.buf.len()) as u64;
            let n = (&mut self.r).take(want).read_to_end(&mut self.buf)?;
            self.bytes_read += n as u64;
            if n == 0 {
                self.eof = true;
            }
        }
        Ok(())
    }

    /// Where the buffer's last complete record ends (None: need more bytes).
    fn boundary(&self) -> Option<usize> {
        let b = &self.buf;
        match self.format {
            Format::Fasta => {
                let mut end = b.len();
                while let Some(i) = memchr::memrchr(b'>', &b[..end]) {
                    if i > 0 && b[i - 1] == b'\n' {
                        return Some(i);
                    }
                    end = i;
                }
                None
            }
            Format::Csv => memchr::memrchr(b'\n', b).map(|i| i + 1),
            Format::Fastq => {
                let n = newlines(b);
                let want = n - n % 4;
                if want == 0 {
                    return None;
                }
                memchr::memchr_iter(b'\n', b).nth(want as usize - 1).map(|i| i + 1)
            }
        }
    }

    /// The next chunk, or None at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, ParseError> {
        let mut target = self.chunk_bytes;
        loop {
            self.fill(target)?;
            if self.eof {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Ok(Some(std::mem::take(&mut self.buf)));
            }
            if let Some(cut) = self.boundary().filter(|&c| c > 0) {
                let rest = self.buf.split_off(cut);
                return Ok(Some(std::mem::replace(&mut self.buf, rest)));
            }
            if self.buf.len() > self.max_record {
                return Err(ParseError::RecordTooLong(self.max_record));
            }
            target = self.buf.len() + self.chunk_bytes;
        }
    }
}

/// Totals over a file (or, kept by the worker in its checkpoint, over the
/// records stored so far).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Stats {
    pub records: u64,
    pub valid: u64,
    pub invalid: u64,
    pub bases: u64,
    pub gc_bases: u64,
    pub whitespace_stripped: u64,
    pub min_length: Option<u64>,
    pub max_length: Option<u64>,
    pub lines: u64,
    pub bytes: u64,
}

impl Stats {
    pub fn add(&mut self, items: &[Item]) {
        for it in items {
            self.add_item(it);
        }
    }

    pub fn add_item(&mut self, it: &Item) {
        self.records += 1;
        match it {
            Item::Record(r) => {
                self.valid += 1;
                self.bases += r.length;
                self.gc_bases += r.gc_count;
                self.whitespace_stripped += r.whitespace;
                self.min_length = Some(self.min_length.map_or(r.length, |m| m.min(r.length)));
                self.max_length = Some(self.max_length.map_or(r.length, |m| m.max(r.length)));
            }
            Item::Problem(_) => self.invalid += 1,
        }
    }
}

/// Parses a whole stream: chunks read on a separate thread, parsed in
/// parallel batches, handed to `sink` in file order with global indices and
/// lines (`sink` gets the items and the bytes read so far; an error from it
/// stops the parse). CSV's header row is checked and not passed on.
pub fn parse_stream<R, S>(r: R, opts: &ParseOptions, ctl: &Control, mut sink: S) -> Result<Stats, ParseError>
where
    R: Read + Send,
    S: FnMut(Vec<Item>, u64) -> Result<(), String>,
{
    let mut stats = Stats::default();
    let batch = opts.chunks_per_batch.max(1);
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<(Vec<u8>, u64), ParseError>>(batch);
        let mut chunker = Chunker::new(r, opts);
        let reader = scope.spawn(move || loop {
            match chunker.next_chunk() {
                Ok(Some(c)) => {
                    if tx.send(Ok((c, chunker.bytes_read))).is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        });
        let mut first = true;
        let mut line_base = 0u64;
        let mut index_base = 0u64;
        let result = (|| {
            let mut pending: Vec<(Vec<u8>, u64)> = Vec::with_capacity(batch);
            let mut done = false;
            while !done {
                pending.clear();
                while pending.len() < batch {
                    match rx.recv() {
                        Ok(Ok(c)) => pending.push(c),
                        Ok(Err(e)) => return Err(e),
                        Err(_) => {
                            done = true;
                            break;
                        }
                    }
                }
                if pending.is_empty() {
                    break;
                }
                ctl.check().map_err(ParseError::Stopped)?;
                if first {
                    first = false;
                    if pending[0].0.iter().all(|b| b.is_ascii_whitespace()) && pending.len() == 1 && done {
                        return Err(ParseError::Empty);
                    }
                    if opts.format == Format::Csv {
                        let c = &mut pending[0].0;
                        let end = memchr::memchr(b'\n', c).map_or(c.len(), |i| i + 1);
                        let header = String::from_utf8_lossy(&c[..end]).trim().to_ascii_lowercase();
                        let header: String = header.split(',').map(str::trim).collect::<Vec<_>>().join(",");
                        if header != CSV_HEADER {
                            return Err(ParseError::Format(format!(
                                "a CSV gene file starts with the header row '{CSV_HEADER}' (found '{}')",
                                header.chars().take(80).collect::<String>()
                            )));
                        }
                        c.drain(..end);
                        line_base = 1;
                    }
                }
                let chunks: Vec<(Arc<Vec<u8>>, u64)> = pending.drain(..).map(|(c, read)| (Arc::new(c), read)).collect();
                let outs: Vec<ChunkOut> = chunks.par_iter().map(|(c, _)| parse_chunk(c, opts.format)).collect();
                for (out, (_, read)) in outs.into_iter().zip(chunks.iter()) {
                    let mut items = out.items;
                    let n = items.len() as u64;
                    for it in &mut items {
                        match it {
                            Item::Record(r) => {
                                r.index += index_base;
                                r.line += line_base;
                            }
                            Item::Problem(p) => {
                                p.index += index_base;
                                p.line += line_base;
                            }
                        }
                    }
                    index_base += n;
                    line_base += out.lines;
                    stats.add(&items);
                    stats.lines = line_base;
                    stats.bytes = *read;
                    sink(items, *read).map_err(ParseError::Sink)?;
                }
            }
            Ok(())
        })();
        drop(rx);
        let _ = reader.join();
        result
    })?;
    if stats.records == 0 && stats.bytes == 0 {
        return Err(ParseError::Empty);
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(text: &[u8], format: Format, chunk: usize) -> Result<(Vec<Item>, Stats), ParseError> {
        let mut opts = ParseOptions::new(format);
        opts.chunk_bytes = chunk;
        opts.chunks_per_batch = 3;
        let mut all = Vec::new();
        let stats = parse_stream(text, &opts, &Control::unlimited(), |items, _| {
            all.extend(items);
            Ok(())
        })?;
        Ok((all, stats))
    }

    fn records(items: &[Item]) -> Vec<&Record> {
        items.iter().filter_map(|i| if let Item::Record(r) = i { Some(r) } else { None }).collect()
    }

    #[test]
    fn scan_counts_gc_and_breaks_and_flags_others() {
        assert_eq!(scan(b"ACGTacgtNn\n"), (4, 1, false));
        assert!(scan(b"ACGT\r\n").2, "a carriage return takes the slow path");
        assert_eq!(scan(&b"GC".repeat(500)), (1000, 0, false));
        assert!(scan(b"ACGTR").2);
        assert!(scan(b"AC GT").2);
        let mut long = b"A".repeat(1000);
        long[999] = b'x';
        assert!(scan(&long).2);
    }

    #[test]
    fn fasta_multi_line_records_across_chunk_sizes() {
        let text = b">one desc\nACGT\nacgt\n>two\r\nGGCC\r\n\n>three\nNNNN";
        for chunk in [1024, 7, 3] {
            let (items, stats) = parse_all(text, Format::Fasta, chunk).unwrap();
            let r = records(&items);
            assert_eq!(r.len(), 3, "chunk {chunk}");
            assert_eq!((r[0].name.as_str(), &*r[0].sequence(), r[0].line, r[0].index), ("one desc", "ACGTacgt", 1, 0));
            assert_eq!((r[1].name.as_str(), &*r[1].sequence(), r[1].line), ("two", "GGCC", 4));
            assert_eq!((&*r[2].sequence(), r[2].line, r[2].index), ("NNNN", 7, 2));
            assert_eq!(r[1].gc(), 1.0);
            assert_eq!(r[0].gc(), 0.5);
            assert_eq!((stats.records, stats.valid, stats.bases), (3, 3, 16));
        }
    }

    #[test]
    fn a_name_with_a_nul_byte_is_an_invalid_record_in_every_format() {
        for (i, (format, text)) in [
            (Format::Fasta, &b">ok\nACGT\n>b\0d\nACGT\n>ok2\nGG\n"[..]),
            (Format::Csv, &b"gene name,sequence\nok,ACGT\nb\0d,ACGT\nok2,GG\n"[..]),
            (Format::Fastq, &b"@ok\nACGT\n+\nIIII\n@b\0d\nACGT\n+\nIIII\n@ok2\nGG\n+\nII\n"[..]),
        ]
        .into_iter()
        .enumerate()
        {
            let (items, stats) = parse_all(text, format, 1024).expect("parses");
            assert_eq!((stats.valid, stats.invalid), (2, 1), "{format:?}");
            assert!(matches!(&items[1], Item::Problem(p) if p.reason.contains("NUL") && p.line == [3, 3, 5][i]), "{format:?}: {:?}", items[1]);
        }
    }

    #[test]
    fn bad_bytes_are_reported_with_line_and_column() {
        let text = b">a\nACGT\nACXT\n>b\nAC GT\n>c\n>d\nAC\xffT\n";
        let (items, stats) = parse_all(text, Format::Fasta, 1024).unwrap();
        assert_eq!(stats.invalid, 3);
        match &items[0] {
            Item::Problem(p) => assert_eq!((p.index, p.line, p.column, p.reason.contains("'X'")), (0, 3, 3, true)),
            other => panic!("{other:?}"),
        }
        match &items[1] {
            Item::Record(r) => assert_eq!((&*r.sequence(), r.whitespace), ("ACGT", 1)),
            other => panic!("{other:?}"),
        }
        match &items[2] {
            Item::Problem(p) => assert_eq!((p.name.as_str(), p.reason.as_str()), ("c", "a header without a sequence")),
            other => panic!("{other:?}"),
        }
        match &items[3] {
            Item::Problem(p) => assert!(p.reason.contains("0xff") && p.line == 8 && p.column == 3, "{p:?}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn csv_with_crlf_header_spaces_and_quotes() {
        let text = b"Gene Name,Sequence\r\ng1,ACGT\r\n\"g,\"\"2\"\"\",ac gt\r\n\r\ng3,AC*T\r\ng4\r\n";
        for chunk in [1024, 8] {
            let (items, stats) = parse_all(text, Format::Csv, chunk).unwrap();
            assert_eq!(stats.records, 4, "chunk {chunk}");
            let r = records(&items);
            assert_eq!((r[0].name.as_str(), &*r[0].sequence(), r[0].line), ("g1", "ACGT", 2));
            assert_eq!((r[1].name.as_str(), &*r[1].sequence(), r[1].whitespace, r[1].line), ("g,\"2\"", "acgt", 1, 3));
            assert!(matches!(&items[2], Item::Problem(p) if p.line == 5 && p.column == 6 && p.reason.contains("'*'")), "{:?}", items[2]);
            assert!(matches!(&items[3], Item::Problem(p) if p.line == 6), "{:?}", items[3]);
        }
    }

    #[test]
    fn csv_header_is_required() {
        assert!(matches!(parse_all(b"name,seq\na,ACGT\n", Format::Csv, 64), Err(ParseError::Format(_))));
    }

    #[test]
    fn fastq_records_and_quality_lengths() {
        let text = b"@r1\nACGT\n+\nIIII\n@r2\nGG\n+\nI\nx\nAC\n+\nII\n";
        for chunk in [1024, 5] {
            let (items, stats) = parse_all(text, Format::Fastq, chunk).unwrap();
            assert_eq!(stats.records, 3);
            assert!(matches!(&items[0], Item::Record(r) if r.name == "r1" && r.gc_count == 2 && r.line == 1));
            assert!(matches!(&items[1], Item::Problem(p) if p.reason.contains("1 quality values for 2 bases") && p.line == 8));
            assert!(matches!(&items[2], Item::Problem(p) if p.reason.contains("'@'") && p.line == 9));
        }
    }

    #[test]
    fn empty_input_and_oversized_records() {
        assert!(matches!(parse_all(b"", Format::Fasta, 64), Err(ParseError::Empty)));
        let mut opts = ParseOptions::new(Format::Fasta);
        opts.chunk_bytes = 1024;
        opts.max_record_bytes = 4096;
        let big = [b">a\n".to_vec(), b"A".repeat(10_000), b"\n>b\nA\n".to_vec()].concat();
        let r = parse_stream(&big[..], &opts, &Control::unlimited(), |_, _| Ok(()));
        assert!(matches!(r, Err(ParseError::RecordTooLong(4096))), "{r:?}");
    }
}
