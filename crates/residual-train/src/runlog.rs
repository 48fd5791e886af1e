//! The run's JSON-lines log (`log.jsonl`): one record per line, each written
//! whole in one `write`, read back skipping what a crash or a full disk tore.
//!
//! Records are of two kinds: step records ([`crate::trainer::StepStats`]:
//! `epoch` counted from 0, `step`, `batch`, ...) and epoch records (`epoch`
//! counted from 1, `train_loss`, `test_acc`, ...). A resumed run first cuts
//! the log back to its checkpoint ([`cut_to_checkpoint`]), so the work a
//! killed run did after its last checkpoint is not logged twice.

use residual_nn::weights::{atomic_write, read_regular_file};
use residual_tensor::{Error, Result};
use serde::Serialize;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// An open log, appending whole records.
#[derive(Debug)]
pub struct RunLog {
    file: std::fs::File,
    path: std::path::PathBuf,
}

impl RunLog {
    /// Opens (or creates) the log at `path` for appending. A torn last line
    /// (a write cut short by a crash or a full disk) is cut off first, so the
    /// next record starts on a line of its own.
    pub fn open(path: &Path) -> Result<Self> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| io(path, e))?;
        let bytes = read_regular_file(path)?;
        let whole = whole_lines_len(&bytes);
        if whole < bytes.len() {
            file.set_len(whole as u64).map_err(|e| io(path, e))?;
        }
        file.seek(SeekFrom::End(0)).map_err(|e| io(path, e))?;
        Ok(RunLog {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Appends `record` as one JSON line, in a single write.
    pub fn append(&mut self, record: &impl Serialize) -> Result<()> {
        let mut line = serde_json::to_vec(record).map_err(|e| io(&self.path, e))?;
        line.push(b'\n');
        self.file.write_all(&line).map_err(|e| io(&self.path, e))
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The length of the part of `bytes` made of whole (newline-terminated) lines.
fn whole_lines_len(bytes: &[u8]) -> usize {
    bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// The records of a log, and how many lines could not be read (a torn last
/// line, or a line torn by an older build that appended after it).
#[derive(Debug, Default)]
pub struct Records {
    /// The parsed records, in order.
    pub records: Vec<serde_json::Value>,
    /// Lines that were not whole JSON records and were skipped.
    pub skipped: usize,
}

/// Reads the records of the log at `path`, skipping torn lines.
pub fn read(path: &Path) -> Result<Records> {
    let bytes = read_regular_file(path)?;
    let mut out = Records::default();
    for line in bytes.split(|&b| b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) if v.is_object() => out.records.push(v),
            _ => out.skipped += 1,
        }
    }
    Ok(out)
}

/// Whether a record is an epoch record (it has held-out figures).
pub fn is_epoch_record(v: &serde_json::Value) -> bool {
    v.get("test_acc").is_some()
}

/// Whether `v` is covered by a checkpoint of `epochs` completed epochs and
/// `steps` optimizer steps: a step record of step `steps` or before, an
/// epoch record of epoch `epochs` or before (counted from 1).
fn within(v: &serde_json::Value, epochs: u64, steps: u64) -> bool {
    if is_epoch_record(v) {
        v["epoch"].as_u64().is_some_and(|e| e <= epochs)
    } else {
        v["step"].as_u64().is_some_and(|s| s <= steps)
    }
}

/// Rewrites the log at `path` (atomically) to the records a checkpoint of
/// `epochs` completed epochs and `steps` optimizer steps covers (a run
/// stopped mid-epoch has steps past its last whole epoch). Returns how many
/// records were dropped. A missing log is left missing.
pub fn cut_to_checkpoint(path: &Path, epochs: u64, steps: u64) -> Result<usize> {
    if !path.exists() {
        return Ok(0);
    }
    let Records { records, skipped } = read(path)?;
    let kept: Vec<&serde_json::Value> = records
        .iter()
        .filter(|v| within(v, epochs, steps))
        .collect();
    let dropped = records.len() - kept.len();
    if dropped == 0 && skipped == 0 {
        return Ok(0);
    }
    let mut text = Vec::new();
    for v in kept {
        serde_json::to_writer(&mut text, v).map_err(|e| io(path, e))?;
        text.push(b'\n');
    }
    atomic_write(path, &text)?;
    Ok(dropped)
}

/// The sums of training loss and accuracy over the step records of epoch
/// `epoch` (counted from 0), and their count, summed in f32 in log order as
/// the training loop sums them (a run resumed mid-epoch goes on from these;
/// a value that is not a number counts as NaN).
pub fn epoch_step_sums(records: &[serde_json::Value], epoch: u64) -> (f32, f32, f32) {
    let (mut loss, mut acc, mut n) = (0.0f32, 0.0f32, 0.0f32);
    for v in records
        .iter()
        .filter(|v| !is_epoch_record(v) && v["epoch"].as_u64() == Some(epoch))
    {
        loss += v["loss"].as_f64().unwrap_or(f64::NAN) as f32;
        acc += v["acc"].as_f64().unwrap_or(f64::NAN) as f32;
        n += 1.0;
    }
    (loss, acc, n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_are_whole_lines_and_a_torn_tail_is_cut_on_open() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("log.jsonl");
        let mut log = RunLog::open(&path).unwrap();
        log.append(&json!({"epoch": 0, "step": 1, "loss": 2.0, "acc": 0.5}))
            .unwrap();
        drop(log);
        // A write cut short: half a record, no newline.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(br#"{"epoch": 0, "step": 2, "lo"#).unwrap();
        drop(f);
        let torn = read(&path).unwrap();
        assert_eq!((torn.records.len(), torn.skipped), (1, 1));
        let mut log = RunLog::open(&path).unwrap();
        log.append(&json!({"epoch": 0, "step": 2, "loss": 1.0, "acc": 0.7}))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2, "{text}");
        let back = read(&path).unwrap();
        assert_eq!((back.records.len(), back.skipped), (2, 0));
        assert_eq!(back.records[1]["step"], 2);
    }

    #[test]
    fn cutting_to_a_checkpoint_drops_the_work_after_it() {
        let scratch = tempfile::tempdir().unwrap();
        let path = scratch.path().join("log.jsonl");
        let mut log = RunLog::open(&path).unwrap();
        for epoch in 0..3u64 {
            for step in 0..2u64 {
                log.append(&json!({"epoch": epoch, "step": epoch * 2 + step + 1,
                    "loss": 1.0 + step as f64, "acc": 0.5}))
                    .unwrap();
            }
            if epoch < 2 {
                log.append(&json!({"epoch": epoch + 1, "train_loss": 1.5, "test_acc": 0.9}))
                    .unwrap();
            }
        }
        // Checkpoint after 2 epochs (4 steps): epoch 2's (0-based) steps go.
        assert_eq!(cut_to_checkpoint(&path, 2, 4).unwrap(), 2);
        let r = read(&path).unwrap().records;
        assert_eq!(r.len(), 6);
        assert!(r
            .iter()
            .all(|v| is_epoch_record(v) || v["epoch"].as_u64() < Some(2)));
        assert_eq!(epoch_step_sums(&r, 1), (3.0, 1.0, 2.0));
        assert_eq!(epoch_step_sums(&r, 2), (0.0, 0.0, 0.0));
        // Nothing to drop: the file is left as it is.
        assert_eq!(cut_to_checkpoint(&path, 2, 4).unwrap(), 0);
        // A checkpoint mid-epoch: 1 epoch and 3 steps keeps step 3 and epoch 1's record.
        assert_eq!(cut_to_checkpoint(&path, 1, 3).unwrap(), 2);
        let r = read(&path).unwrap().records;
        assert_eq!(r.len(), 4);
        assert_eq!(r.last().unwrap()["step"], 3);
    }
}
