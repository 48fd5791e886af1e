//! CIFAR-10 and CIFAR-100 in their binary formats (the `*-binary.tar.gz`
//! releases, unpacked): 32x32 RGB images, one record per image.
//!
//! - CIFAR-10: `data_batch_1.bin` .. `data_batch_5.bin` (train), `test_batch.bin`;
//!   record = 1 label byte + 3072 pixel bytes (R plane, G plane, B plane).
//! - CIFAR-100: `train.bin`, `test.bin`; record = coarse label byte + fine label
//!   byte + 3072 pixel bytes; the fine label (100 classes) is used.

use super::Dataset;
use residual_nn::weights::read_regular_file;
use residual_tensor::{Error, Result};
use std::path::Path;

const PIXELS: usize = 3 * 32 * 32;

/// Which CIFAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// 10 classes.
    Cifar10,
    /// 100 fine classes.
    Cifar100,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            CifarKind::Cifar100 => 2,
        }
    }
    fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100 => 100,
        }
    }
    fn files(self, train: bool) -> Vec<String> {
        match (self, train) {
            (CifarKind::Cifar10, true) => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            (CifarKind::Cifar10, false) => vec!["test_batch.bin".into()],
            (CifarKind::Cifar100, true) => vec!["train.bin".into()],
            (CifarKind::Cifar100, false) => vec!["test.bin".into()],
        }
    }
}

/// A CIFAR split held in memory as bytes.
pub struct Cifar {
    kind: CifarKind,
    images: Vec<u8>,
    labels: Vec<u8>,
}

impl std::fmt::Debug for Cifar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cifar({:?}, {} images)", self.kind, self.labels.len())
    }
}

impl Cifar {
    /// Parses records from the bytes of one or more files; `what` names them in errors.
    pub fn from_records(kind: CifarKind, parts: &[(String, Vec<u8>)]) -> Result<Self> {
        let record = kind.label_bytes() + PIXELS;
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        for (what, bytes) in parts {
            if bytes.is_empty() || bytes.len() % record != 0 {
                return Err(Error::arg(
                    "cifar",
                    format!(
                        "{what}: {} bytes is not a whole number of {record}-byte {kind:?} records \
                         ({} label byte(s) + 3072 pixels); truncated, or the other CIFAR?",
                        bytes.len(),
                        kind.label_bytes()
                    ),
                ));
            }
            for rec in bytes.chunks_exact(record) {
                let label = rec[kind.label_bytes() - 1];
                if label as usize >= kind.classes() {
                    return Err(Error::arg(
                        "cifar",
                        format!(
                            "{what}: label {label} out of range for {} classes",
                            kind.classes()
                        ),
                    ));
                }
                labels.push(label);
                images.extend_from_slice(&rec[kind.label_bytes()..]);
            }
        }
        Ok(Cifar {
            kind,
            images,
            labels,
        })
    }

    /// Reads the train or test split from the unpacked binary release in
    /// `dir` (regular files only: a device or a pipe is an error, not an
    /// endless read).
    pub fn from_dir(kind: CifarKind, dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        let dir = dir.as_ref();
        let parts = kind
            .files(train)
            .into_iter()
            .map(|name| {
                let p = dir.join(&name);
                match read_regular_file(&p) {
                    Ok(b) => Ok((p.display().to_string(), b)),
                    Err(Error::Io { path, msg }) => Err(Error::Io {
                        path,
                        msg: format!("{msg} (expected the unpacked {kind:?} binary release)"),
                    }),
                    Err(e) => Err(e),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Self::from_records(kind, &parts)
    }
}

impl Dataset for Cifar {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn shape(&self) -> [usize; 3] {
        [3, 32, 32]
    }
    fn classes(&self) -> usize {
        self.kind.classes()
    }
    fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
        let px = &self.images[i * PIXELS..(i + 1) * PIXELS];
        Ok((
            px.iter().map(|&b| b as f32 / 255.0).collect(),
            self.labels[i] as usize,
        ))
    }
    fn label(&self, i: usize) -> Result<usize> {
        Ok(self.labels[i] as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(label: &[u8], fill: u8) -> Vec<u8> {
        let mut r = label.to_vec();
        r.extend((0..PIXELS).map(|i| fill.wrapping_add(i as u8)));
        r
    }

    #[test]
    fn cifar10_and_100_records_parse() {
        let mut bytes = record(&[3], 0);
        bytes.extend(record(&[9], 7));
        let c = Cifar::from_records(CifarKind::Cifar10, &[("b".into(), bytes)]).unwrap();
        assert_eq!((c.len(), c.classes(), c.shape()), (2, 10, [3, 32, 32]));
        let (img, label) = c.get(1).unwrap();
        assert_eq!(label, 9);
        assert_eq!(img[0], 7.0 / 255.0);
        // The G plane starts at 1024 (whose low byte is 0): the same fill value.
        assert_eq!(img[1024], 7.0 / 255.0);
        let c =
            Cifar::from_records(CifarKind::Cifar100, &[("t".into(), record(&[2, 77], 1))]).unwrap();
        assert_eq!((c.get(0).unwrap().1, c.classes()), (77, 100));
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let err = Cifar::from_records(CifarKind::Cifar10, &[("x.bin".into(), vec![0; 100])])
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.bin") && err.contains("3073-byte"), "{err}");
        // A CIFAR-100 file read as CIFAR-10: sizes do not divide.
        let err = Cifar::from_records(CifarKind::Cifar10, &[("t.bin".into(), record(&[2, 77], 1))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("other CIFAR"), "{err}");
        let err = Cifar::from_records(CifarKind::Cifar10, &[("l.bin".into(), record(&[12], 0))])
            .unwrap_err()
            .to_string();
        assert!(err.contains("label 12"), "{err}");
        let err = Cifar::from_dir(CifarKind::Cifar10, "/no/such/dir", true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/no/such/dir/data_batch_1.bin"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_device_in_place_of_a_file_is_refused_not_read_without_end() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/dev/zero", dir.path().join("test.bin")).unwrap();
        let err = Cifar::from_dir(CifarKind::Cifar100, dir.path(), false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("test.bin") && err.contains("not a regular file"),
            "{err}"
        );
    }
}
