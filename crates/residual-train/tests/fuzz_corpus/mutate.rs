//! Seeded mutations of corpus inputs, in the spirit of libFuzzer's: bit
//! flips, random and interesting bytes and integers (at the header's offsets
//! more often than elsewhere), inserted, deleted and repeated ranges,
//! truncation, splicing with another input, and, for the text formats
//! (JSON, TOML), numbers and brackets. The same seed gives the same inputs.

use residual_tensor::rng::hash64;

/// A counter-based random stream (the repo's `hash64`).
pub struct Rng {
    seed: u64,
    at: u64,
}

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Rng { seed, at: 0 }
    }
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.at += 1;
        hash64(self.seed, self.at)
    }
    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

/// Integers that sit on boundaries: sizes, counts and offsets near them are
/// where parsers go wrong.
const INTERESTING: [u64; 18] = [
    0,
    1,
    2,
    8,
    16,
    0x7f,
    0x80,
    0xff,
    0x7fff,
    0xffff,
    3073,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    1 << 32,
    100_000_000,
    i64::MAX as u64,
    u64::MAX,
];

/// Numbers to put in place of a number in text.
const TEXT_NUMBERS: [&str; 10] = [
    "0",
    "-1",
    "1",
    "65537",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e400",
    "-0.0",
    "0.5",
];

/// An offset where integers matter most: the first 32 bytes (headers,
/// length prefixes) half the time, anywhere otherwise.
fn header_offset(rng: &mut Rng, len: usize) -> usize {
    if rng.below(2) == 0 {
        rng.below(len.min(32))
    } else {
        rng.below(len)
    }
}

/// Writes `value` as 1, 2, 4 or 8 bytes, little- or big-endian, at `at`.
fn put_integer(v: &mut Vec<u8>, at: usize, value: u64, rng: &mut Rng) {
    let width = [1, 2, 4, 8][rng.below(4)];
    // The low `width` bytes, in the order the chosen endianness stores them.
    let le = value.to_le_bytes();
    let be = value.to_be_bytes();
    let bytes = if rng.below(2) == 0 {
        &le[..width]
    } else {
        &be[8 - width..]
    };
    let end = (at + width).min(v.len());
    v.splice(at..end, bytes.iter().copied());
}

/// The ranges of ASCII digits in `v` (numbers in text).
fn digit_runs(v: &[u8]) -> Vec<(usize, usize)> {
    let mut runs = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i].is_ascii_digit() {
            let start = i;
            while i < v.len() && v[i].is_ascii_digit() {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// One mutation of `v`; `other` is another input to splice from.
fn mutate_once(v: &mut Vec<u8>, other: &[u8], rng: &mut Rng) {
    let len = v.len();
    match rng.below(12) {
        0 if len > 0 => {
            let at = rng.below(len);
            v[at] ^= 1 << rng.below(8);
        }
        1 if len > 0 => {
            let at = rng.below(len);
            v[at] = rng.next() as u8;
        }
        2 => {
            let at = rng.below(len + 1);
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            v.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(64));
            v.drain(at..at + n);
        }
        4 => v.truncate(rng.below(len + 1)),
        5 | 6 if len > 0 => {
            let at = header_offset(rng, len);
            let value = INTERESTING[rng.below(INTERESTING.len())];
            let value = if rng.below(4) == 0 {
                value.wrapping_add(rng.below(3) as u64).wrapping_sub(1)
            } else {
                value
            };
            put_integer(v, at, value, rng);
        }
        7 if !other.is_empty() => {
            let keep = rng.below(len + 1);
            let from = rng.below(other.len());
            v.truncate(keep);
            v.extend_from_slice(&other[from..]);
        }
        8 if len > 0 => {
            let at = rng.below(len);
            let n = 1 + rng.below((len - at).min(256));
            let copies = 1 + rng.below(8);
            let chunk = v[at..at + n].to_vec();
            for _ in 0..copies {
                v.splice(at..at, chunk.iter().copied());
            }
        }
        9 => {
            let runs = digit_runs(v);
            if !runs.is_empty() {
                let (s, e) = runs[rng.below(runs.len())];
                let number = TEXT_NUMBERS[rng.below(TEXT_NUMBERS.len())];
                v.splice(s..e, number.bytes());
            }
        }
        10 if len > 0 => {
            let at = rng.below(len + 1);
            const SYNTAX: &[u8] = b"[]{}\",:=\n'";
            let byte = SYNTAX[rng.below(SYNTAX.len())];
            v.insert(at, byte);
        }
        _ if len > 0 => {
            let at = rng.below(len);
            v[at] = [0, 0xff, b'0', b'"', b'.'][rng.below(5)];
        }
        _ => v.push(rng.next() as u8),
    }
}

/// A mutation of `input`: one to four mutations stacked.
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = input.to_vec();
    // One mutation half the time (most inputs stay close to valid ones), up to four.
    for _ in 0..[1, 1, 1, 1, 2, 2, 3, 4][rng.below(8)] {
        mutate_once(&mut v, other, rng);
    }
    v
}
