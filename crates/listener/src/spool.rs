//! The spool: every accepted notification, durable on local disk before it is acknowledged.
//!
//! Notifications are appended to numbered segment files (`segments/<n>.seg`) by one writer
//! thread. Appends that arrive together are written together and made durable with one
//! `fdatasync` (group commit), so a busy endpoint pays one disk flush per batch, not per
//! request, and each answer still waits for its own bytes to be on disk. A segment is sealed
//! (closed for appends) when it holds `roll_events` notifications or when the publisher asks;
//! sealed segments are what the next drop is built from.
//!
//! A record is `len: u32 LE | received_ms: i64 LE | crc32(body): u32 LE | body`. A crash can
//! leave only the last record of the open segment torn (it was never acknowledged, since the
//! answer waits for the flush); reading stops there, and the checksum catches a tail whose
//! length was written but whose bytes were not.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use tokio::sync::{Notify, oneshot};

/// A record's fixed header: length, receive time, checksum.
const HEADER: usize = 4 + 8 + 4;
/// Appends written together before one flush, at most.
const MAX_GROUP: usize = 512;

/// One notification as spooled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spooled {
    pub received_ms: i64,
    pub body: Vec<u8>,
}

/// The spool's segment files.
#[derive(Debug, Clone)]
pub struct SegmentDir {
    dir: PathBuf,
}

impl SegmentDir {
    pub fn open(spool: &Path) -> io::Result<Self> {
        let dir = spool.join("segments");
        fs::create_dir_all(&dir)?;
        Ok(SegmentDir { dir })
    }

    /// Where rolls keep the notifications they hold for the next one (`--skill`).
    pub fn held_dir(&self) -> PathBuf {
        self.dir.with_file_name("held")
    }

    /// The held files present, oldest roll first (by modification time).
    pub fn held_files(&self) -> io::Result<Vec<PathBuf>> {
        let mut found = Vec::new();
        match fs::read_dir(self.held_dir()) {
            Ok(entries) => {
                for entry in entries {
                    let entry = entry?;
                    if entry.file_name().to_string_lossy().ends_with(".seg") {
                        found.push((entry.metadata()?.modified()?, entry.path()));
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        found.sort();
        Ok(found.into_iter().map(|(_, p)| p).collect())
    }

    pub fn path(&self, segment: u64) -> PathBuf {
        self.dir.join(format!("{segment:020}.seg"))
    }

    /// The numbers of the segment files present, in order.
    pub fn list(&self) -> io::Result<Vec<u64>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name.strip_suffix(".seg").and_then(|n| n.parse().ok()) {
                found.push(n);
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    /// Removes a published segment (a missing one is fine: removal may be repeated).
    pub fn remove(&self, segment: u64) -> io::Result<()> {
        match fs::remove_file(self.path(segment)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Every intact record of a segment, in order; a torn tail ends the segment.
    pub fn read(&self, segment: u64) -> io::Result<Vec<Spooled>> {
        read_file(&self.path(segment))
    }
}

/// Every intact record of a spool file, in order; a torn tail ends it.
pub fn read_file(path: &Path) -> io::Result<Vec<Spooled>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut records = Vec::new();
    while let Some(record) = read_record(&mut reader)? {
        records.push(record);
    }
    Ok(records)
}

/// Writes `records` as a new spool file at `path`, durably (the file and its name).
pub fn write_file(path: &Path, records: &[&Spooled]) -> io::Result<()> {
    let dir = path.parent().expect("a spool file has a folder");
    fs::create_dir_all(dir)?;
    let file = File::create(path)?;
    let mut out = BufWriter::new(file);
    for record in records {
        out.write_all(&header_of(record)?)?;
        out.write_all(&record.body)?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    File::open(dir)?.sync_all()
}

fn header_of(record: &Spooled) -> io::Result<[u8; HEADER]> {
    let len = u32::try_from(record.body.len()).map_err(io::Error::other)?;
    let mut header = [0u8; HEADER];
    header[0..4].copy_from_slice(&len.to_le_bytes());
    header[4..12].copy_from_slice(&record.received_ms.to_le_bytes());
    header[12..16].copy_from_slice(&crc32fast::hash(&record.body).to_le_bytes());
    Ok(header)
}

/// The next record, or `None` at the end or at a torn tail.
fn read_record(reader: &mut impl Read) -> io::Result<Option<Spooled>> {
    let mut header = [0u8; HEADER];
    if !read_full(reader, &mut header)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let received_ms = i64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes"));
    let mut body = vec![0; len];
    if !read_full(reader, &mut body)? || crc32fast::hash(&body) != crc {
        return Ok(None);
    }
    Ok(Some(Spooled { received_ms, body }))
}

/// Fills `buf`; false when the input ends first.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => return Ok(false),
            n => filled += n,
        }
    }
    Ok(true)
}

enum Command {
    Append {
        record: Spooled,
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Seal the open segment if it holds anything; answers the sealed segment's number.
    Seal { done: oneshot::Sender<Option<u64>> },
}

/// Appends to the spool from any task; cheap to clone.
#[derive(Clone)]
pub struct SpoolWriter {
    to_writer: mpsc::Sender<Command>,
    /// The segment being appended to: every lower one is sealed.
    open_segment: Arc<AtomicU64>,
    /// Notifications acknowledged and not yet published.
    depth: Arc<AtomicU64>,
}

/// Told when a segment is sealed, so that the publisher starts at once.
pub type SealedSignal = Arc<Notify>;

impl SpoolWriter {
    /// Starts the writer thread on a new segment numbered after `after` (every existing
    /// segment stays sealed). A segment is sealed once it holds `roll_events` notifications.
    pub fn start(
        dir: SegmentDir,
        after: u64,
        roll_events: u64,
        sealed: SealedSignal,
        depth: Arc<AtomicU64>,
    ) -> io::Result<SpoolWriter> {
        let (to_writer, commands) = mpsc::channel();
        let mut open = OpenSegment::create(&dir, after + 1)?;
        let open_segment = Arc::new(AtomicU64::new(after + 1));
        let open_in_writer = open_segment.clone();
        let depth_in_writer = depth.clone();
        std::thread::Builder::new()
            .name("lpdrop-spool".into())
            .spawn(move || {
                while let Ok(first) = commands.recv() {
                    let mut group = vec![first];
                    while group.len() < MAX_GROUP {
                        match commands.try_recv() {
                            Ok(c) => group.push(c),
                            Err(_) => break,
                        }
                    }
                    let before = open.number;
                    open = open.apply(&dir, group, roll_events, &depth_in_writer, &open_in_writer);
                    if open.number != before {
                        sealed.notify_one();
                    }
                }
            })?;
        Ok(SpoolWriter {
            to_writer,
            open_segment,
            depth,
        })
    }

    /// Appends one notification; resolves once it is durable (or could not be written).
    pub async fn append(&self, record: Spooled) -> io::Result<()> {
        let (done, answer) = oneshot::channel();
        self.to_writer
            .send(Command::Append { record, done })
            .map_err(|_| io::Error::other("the spool writer has stopped"))?;
        answer
            .await
            .map_err(|_| io::Error::other("the spool writer has stopped"))?
    }

    /// Seals the open segment if it holds anything: its number, or `None` when it was empty.
    pub async fn seal(&self) -> Option<u64> {
        let (done, answer) = oneshot::channel();
        self.to_writer.send(Command::Seal { done }).ok()?;
        answer.await.ok().flatten()
    }

    /// The segment being appended to: every segment below it is sealed.
    pub fn open_segment(&self) -> u64 {
        self.open_segment.load(Ordering::Acquire)
    }

    /// Notifications acknowledged and not yet published.
    pub fn depth(&self) -> u64 {
        self.depth.load(Ordering::Relaxed)
    }
}

/// The segment being appended to.
struct OpenSegment {
    number: u64,
    file: BufWriter<File>,
    /// Bytes known durable: where a failed write is cut back to.
    durable_len: u64,
    records: u64,
    /// Set when a failed write could not be cut back: nothing more is accepted into it.
    broken: Option<String>,
}

impl OpenSegment {
    fn create(dir: &SegmentDir, number: u64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(dir.path(number))?;
        // The new name must survive a crash too, or acknowledged records could vanish with it.
        File::open(&dir.dir)?.sync_all()?;
        Ok(OpenSegment {
            number,
            file: BufWriter::with_capacity(256 << 10, file),
            durable_len: 0,
            records: 0,
            broken: None,
        })
    }

    /// Writes a group of appends with one flush, answers each, and seals when asked or full.
    fn apply(
        mut self,
        dir: &SegmentDir,
        group: Vec<Command>,
        roll_events: u64,
        depth: &AtomicU64,
        open_segment: &AtomicU64,
    ) -> Self {
        let mut waiting = Vec::new();
        let mut seal_requests = Vec::new();
        let mut written = 0u64;
        let mut failure: Option<String> = self.broken.clone();
        for command in group {
            match command {
                Command::Append { record, done } => {
                    if failure.is_none()
                        && let Err(e) = self.write(&record)
                    {
                        failure = Some(e.to_string());
                    }
                    written += 1;
                    waiting.push(done);
                }
                Command::Seal { done } => seal_requests.push(done),
            }
        }
        if failure.is_none()
            && !waiting.is_empty()
            && let Err(e) = self.flush()
        {
            failure = Some(e.to_string());
        }
        match &failure {
            None => {
                self.records += written;
                self.durable_len = self.file.get_ref().metadata().map_or(0, |m| m.len());
                let now = depth.fetch_add(written, Ordering::Relaxed) + written;
                lpdrop_metrics::WEBHOOK_SPOOL_DEPTH.set(&[], now as f64);
                for done in waiting {
                    let _ = done.send(Ok(()));
                }
            }
            Some(why) => {
                // Cut the segment back to what was durable, so that a later append does not
                // follow a torn record (readers stop at the first one).
                if self.broken.is_none() && self.cut_back().is_err() {
                    self.broken = Some(why.clone());
                }
                for done in waiting {
                    let _ = done.send(Err(io::Error::other(format!(
                        "the spool could not be written: {why}"
                    ))));
                }
            }
        }
        let full = self.records >= roll_events.max(1);
        if (full || !seal_requests.is_empty() || self.broken.is_some()) && self.records > 0 {
            let number = self.number;
            match OpenSegment::create(dir, number + 1) {
                Ok(next) => {
                    // Published before anyone hears of the seal, so that they see it.
                    open_segment.store(next.number, Ordering::Release);
                    for done in seal_requests {
                        let _ = done.send(Some(number));
                    }
                    return next;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a new spool segment");
                    self.broken.get_or_insert(e.to_string());
                }
            }
        }
        for done in seal_requests {
            let _ = done.send(None);
        }
        self
    }

    fn write(&mut self, record: &Spooled) -> io::Result<()> {
        self.file.write_all(&header_of(record)?)?;
        self.file.write_all(&record.body)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_data()
    }

    fn cut_back(&mut self) -> io::Result<()> {
        // Whatever the buffer still holds belongs to the failed group.
        let file = self.file.get_ref().try_clone()?;
        let _ = std::mem::replace(
            &mut self.file,
            BufWriter::with_capacity(256 << 10, file.try_clone()?),
        )
        .into_parts();
        file.set_len(self.durable_len)?;
        file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: i64) -> Spooled {
        Spooled {
            received_ms: i,
            body: format!("{{\"n\":{i}}}").into_bytes(),
        }
    }

    #[tokio::test]
    async fn appends_are_durable_in_order_and_segments_roll() {
        let dir = tempfile::tempdir().unwrap();
        let segments = SegmentDir::open(dir.path()).unwrap();
        let sealed = SealedSignal::default();
        let depth = Arc::new(AtomicU64::new(0));
        let writer = SpoolWriter::start(segments.clone(), 0, 3, sealed.clone(), depth).unwrap();
        for i in 0..4 {
            writer.append(record(i)).await.unwrap();
        }
        // Three filled segment 1; the fourth went to segment 2, sealed on request.
        assert_eq!(writer.seal().await, Some(2));
        assert_eq!(writer.seal().await, None, "an empty segment is not sealed");
        assert_eq!(segments.list().unwrap(), vec![1, 2, 3]);
        let all: Vec<Spooled> = [1, 2]
            .iter()
            .flat_map(|s| segments.read(*s).unwrap())
            .collect();
        assert_eq!(all, (0..4).map(record).collect::<Vec<_>>());
        assert_eq!(writer.depth(), 4);
    }

    #[test]
    fn a_torn_tail_ends_the_segment() {
        let dir = tempfile::tempdir().unwrap();
        let segments = SegmentDir::open(dir.path()).unwrap();
        let mut open = OpenSegment::create(&segments, 1).unwrap();
        open.write(&record(1)).unwrap();
        open.write(&record(2)).unwrap();
        open.flush().unwrap();
        let path = segments.path(1);
        let bytes = fs::read(&path).unwrap();
        // Cut inside the second record's body, then flip a byte of a full copy's body.
        fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        assert_eq!(segments.read(1).unwrap(), vec![record(1)]);
        let mut flipped = bytes.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert_eq!(segments.read(1).unwrap(), vec![record(1)]);
    }
}
