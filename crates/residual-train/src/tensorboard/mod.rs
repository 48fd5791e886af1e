//! TensorBoard event files, written without TensorFlow: [`EventWriter`]
//! appends scalars and histograms to an `events.out.tfevents.*` file that
//! TensorBoard (`tensorboard --logdir runs/`) reads. [`record`] frames
//! records as TFRecord does (masked CRC32C), [`proto`] encodes the few
//! protobuf messages of `event.proto` and `summary.proto` involved.
//!
//! Histograms are [`Histogram`]s: a fixed number of equal-width buckets over
//! the values' [min, max] (as `tf.summary.histogram` does), not TensorFlow
//! v1's exponential buckets.

pub mod proto;
pub mod record;

use crate::monitor::Histogram;
use proto::{Payload, Value};
use residual_tensor::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The version string TensorBoard expects in a file's first event.
pub const FILE_VERSION: &str = "brain.Event:2";

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Seconds since the Unix epoch, as TensorBoard's `wall_time`.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name for the file name (`localhost` where it is unknown).
fn hostname() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        .collect();
    if name.is_empty() {
        "localhost".into()
    } else {
        name
    }
}

/// An open events file, appending one event per call. Writes are buffered:
/// [`EventWriter::flush`] (or dropping the writer) puts them on disk.
#[derive(Debug)]
pub struct EventWriter {
    file: BufWriter<File>,
    path: PathBuf,
}

impl EventWriter {
    /// Creates a new events file in `dir` (created if missing), named
    /// `events.out.tfevents.{unix_secs}.{hostname}.{pid}.residual` (with a
    /// counter after `residual` if that name is taken), and writes its first
    /// event, `file_version: "brain.Event:2"`. A folder may hold several
    /// such files (a resumed run adds one); TensorBoard merges them.
    pub fn create(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        let secs = now() as u64;
        let stem = format!(
            "events.out.tfevents.{secs}.{}.{}.residual",
            hostname(),
            std::process::id()
        );
        let mut n = 0;
        let (file, path) = loop {
            let name = match n {
                0 => stem.clone(),
                n => format!("{stem}{n}"),
            };
            let path = dir.join(name);
            match File::options().write(true).create_new(true).open(&path) {
                Ok(f) => break (f, path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => n += 1,
                Err(e) => return Err(io(&path, e)),
            }
        };
        let mut w = EventWriter {
            file: BufWriter::new(file),
            path,
        };
        w.write_event(0, Payload::FileVersion(FILE_VERSION))?;
        w.flush()?;
        Ok(w)
    }

    /// The events file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_event(&mut self, step: u64, payload: Payload) -> Result<()> {
        let event = proto::event(now(), step as i64, payload);
        self.file
            .write_all(&record::frame(&event))
            .map_err(|e| io(&self.path, e))
    }

    /// One scalar at `step`.
    pub fn add_scalar(&mut self, tag: &str, value: f32, step: u64) -> Result<()> {
        self.add_scalars(&[(tag, value)], step)
    }

    /// Several scalars at `step`, in one event.
    pub fn add_scalars(&mut self, values: &[(&str, f32)], step: u64) -> Result<()> {
        let values: Vec<(&str, Value)> =
            values.iter().map(|&(t, v)| (t, Value::Scalar(v))).collect();
        self.write_event(step, Payload::Summary(&proto::summary(&values)))
    }

    /// A histogram of `values` at `step` ([`Histogram::of`]: equal-width
    /// buckets over their finite range).
    pub fn add_histogram(&mut self, tag: &str, values: &[f32], step: u64) -> Result<()> {
        self.add_histogram_of(tag, &Histogram::of(values), step)
    }

    /// A histogram already bucketed, at `step`.
    pub fn add_histogram_of(&mut self, tag: &str, h: &Histogram, step: u64) -> Result<()> {
        let summary = proto::summary(&[(tag, Value::Histogram(h))]);
        self.write_event(step, Payload::Summary(&summary))
    }

    /// Marks a (re)start at `step`: TensorBoard drops what earlier files of
    /// the folder logged at `step` and after (work a killed run did past its
    /// last checkpoint, which the resumed run redoes).
    pub fn session_start(&mut self, step: u64) -> Result<()> {
        self.write_event(step, Payload::SessionStart)
    }

    /// Writes the buffered events to the file.
    pub fn flush(&mut self) -> Result<()> {
        self.file.flush().map_err(|e| io(&self.path, e))
    }
}

#[cfg(test)]
mod tests;
