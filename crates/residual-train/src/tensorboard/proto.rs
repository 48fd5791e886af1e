//! Hand-written protobuf encoding of the few messages of TensorFlow's
//! `event.proto` and `summary.proto` an events file needs. Field numbers:
//!
//! - `Event`: wall_time 1 (double), step 2 (int64), file_version 3 (string),
//!   summary 5 (Summary), session_log 7 (SessionLog)
//! - `SessionLog`: status 1 (enum; START = 1)
//! - `Summary`: repeated value 1 (Summary.Value)
//! - `Summary.Value`: tag 1 (string), simple_value 2 (float), histo 5 (HistogramProto)
//! - `HistogramProto`: min 1, max 2, num 3, sum 4, sum_squares 5 (double),
//!   bucket_limit 6, bucket 7 (packed repeated double)

use crate::monitor::Histogram;

/// Wire type of varints.
const VARINT: u8 = 0;
/// Wire type of 64-bit fixed values (double).
const FIXED64: u8 = 1;
/// Wire type of length-delimited values (strings, messages, packed fields).
const LEN: u8 = 2;
/// Wire type of 32-bit fixed values (float).
const FIXED32: u8 = 5;

/// Appends `v` as a base-128 varint.
pub fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_key(out: &mut Vec<u8>, field: u32, wire: u8) {
    put_varint(out, ((field as u64) << 3) | wire as u64);
}

fn put_double(out: &mut Vec<u8>, field: u32, v: f64) {
    put_key(out, field, FIXED64);
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    put_key(out, field, LEN);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_packed_doubles(out: &mut Vec<u8>, field: u32, vs: &[f64]) {
    let bytes: Vec<u8> = vs.iter().flat_map(|v| v.to_le_bytes()).collect();
    put_bytes(out, field, &bytes);
}

/// What one summary value holds.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A scalar (`simple_value`).
    Scalar(f32),
    /// A histogram (`histo`).
    Histogram(&'a Histogram),
}

/// A `HistogramProto`.
pub fn histogram(h: &Histogram) -> Vec<u8> {
    let mut out = Vec::new();
    put_double(&mut out, 1, h.min);
    put_double(&mut out, 2, h.max);
    put_double(&mut out, 3, h.num);
    put_double(&mut out, 4, h.sum);
    put_double(&mut out, 5, h.sum_squares);
    put_packed_doubles(&mut out, 6, &h.bucket_limit);
    put_packed_doubles(&mut out, 7, &h.bucket);
    out
}

/// A `Summary` of `(tag, value)` pairs.
pub fn summary(values: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (tag, value) in values {
        let mut v = Vec::new();
        put_bytes(&mut v, 1, tag.as_bytes());
        match value {
            Value::Scalar(x) => {
                put_key(&mut v, 2, FIXED32);
                v.extend_from_slice(&x.to_le_bytes());
            }
            Value::Histogram(h) => put_bytes(&mut v, 5, &histogram(h)),
        }
        put_bytes(&mut out, 1, &v);
    }
    out
}

/// What an event carries besides its time and step.
#[derive(Debug, Clone, Copy)]
pub enum Payload<'a> {
    /// `file_version`: the first event of a file.
    FileVersion(&'a str),
    /// An encoded `Summary`.
    Summary(&'a [u8]),
    /// `session_log { status: START }`: a (re)start at this step; TensorBoard
    /// drops what earlier files logged at this step and later.
    SessionStart,
}

/// An `Event`.
pub fn event(wall_time: f64, step: i64, payload: Payload) -> Vec<u8> {
    let mut out = Vec::new();
    put_double(&mut out, 1, wall_time);
    put_key(&mut out, 2, VARINT);
    put_varint(&mut out, step as u64);
    match payload {
        Payload::FileVersion(v) => put_bytes(&mut out, 3, v.as_bytes()),
        Payload::Summary(s) => put_bytes(&mut out, 5, s),
        Payload::SessionStart => put_bytes(&mut out, 7, &[0x08, 0x01]),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, v);
        out
    }

    #[test]
    fn varints() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(16_384), [0x80, 0x80, 0x01]);
        // A negative int64 takes ten bytes.
        assert_eq!(
            varint(-1i64 as u64),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn scalar_summary_bytes() {
        // Summary { value { tag: "a" simple_value: 1.0 } }
        let s = summary(&[("a", Value::Scalar(1.0))]);
        assert_eq!(
            s,
            [0x0a, 0x08, 0x0a, 0x01, b'a', 0x15, 0x00, 0x00, 0x80, 0x3f]
        );
    }

    #[test]
    fn event_bytes() {
        let e = event(0.0, 3, Payload::FileVersion("v"));
        let mut want = vec![0x09];
        want.extend_from_slice(&0f64.to_le_bytes());
        want.extend_from_slice(&[0x10, 0x03, 0x1a, 0x01, b'v']);
        assert_eq!(e, want);
        assert!(event(0.0, 1, Payload::SessionStart).ends_with(&[0x3a, 0x02, 0x08, 0x01]));
    }
}
