//! An events file written and read back by a tiny protobuf reader.

use super::record::tests::unframe;
use super::*;

/// The fields of one message: (field number, varint or fixed value, or bytes).
fn fields(mut b: &[u8]) -> Vec<(u32, u64, Vec<u8>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let (mut v, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            *b = &b[1..];
            v |= ((byte & 0x7f) as u64) << shift;
            shift += 7;
            if byte < 0x80 {
                return v;
            }
        }
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, varint(&mut b), Vec::new())),
            1 => {
                out.push((
                    field,
                    u64::from_le_bytes(b[..8].try_into().unwrap()),
                    Vec::new(),
                ));
                b = &b[8..];
            }
            5 => {
                out.push((
                    field,
                    u32::from_le_bytes(b[..4].try_into().unwrap()) as u64,
                    Vec::new(),
                ));
                b = &b[4..];
            }
            2 => {
                let n = varint(&mut b) as usize;
                out.push((field, 0, b[..n].to_vec()));
                b = &b[n..];
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

fn field(msg: &[(u32, u64, Vec<u8>)], n: u32) -> &(u32, u64, Vec<u8>) {
    msg.iter()
        .find(|f| f.0 == n)
        .unwrap_or_else(|| panic!("field {n}"))
}

#[test]
fn writes_a_readable_events_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = EventWriter::create(dir.path()).unwrap();
    let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
    assert!(name.starts_with("events.out.tfevents."), "{name}");
    assert!(
        name.ends_with(&format!(".{}.residual", std::process::id())),
        "{name}"
    );
    w.add_scalar("train/loss", 0.5, 7).unwrap();
    w.add_histogram("weights/w", &[1.0, 2.0, 3.0, 4.0], 7)
        .unwrap();
    w.session_start(8).unwrap();
    w.flush().unwrap();
    // A second writer in the same folder and second gets a name of its own.
    let w2 = EventWriter::create(dir.path()).unwrap();
    assert_ne!(w2.path(), w.path());

    let records = unframe(&std::fs::read(w.path()).unwrap());
    assert_eq!(records.len(), 4);
    let first = fields(&records[0]);
    assert_eq!(field(&first, 3).2, FILE_VERSION.as_bytes());
    assert!(f64::from_bits(field(&first, 1).1) > 1.6e9, "wall time");

    let scalar = fields(&records[1]);
    assert_eq!(field(&scalar, 2).1, 7);
    let summary = fields(&field(&scalar, 5).2);
    let value = fields(&field(&summary, 1).2);
    assert_eq!(field(&value, 1).2, b"train/loss");
    assert_eq!(f32::from_bits(field(&value, 2).1 as u32), 0.5);

    let histo = fields(&field(&fields(&field(&fields(&records[2]), 5).2), 1).2);
    let h = fields(&field(&histo, 5).2);
    let double = |n| f64::from_bits(field(&h, n).1);
    assert_eq!((double(1), double(2), double(3)), (1.0, 4.0, 4.0));
    assert_eq!((double(4), double(5)), (10.0, 30.0));
    let doubles = |n| -> Vec<f64> {
        field(&h, n)
            .2
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    assert_eq!(doubles(6).len(), Histogram::BUCKETS);
    assert_eq!(*doubles(6).last().unwrap(), 4.0);
    assert_eq!(doubles(7).iter().sum::<f64>(), 4.0);

    let start = fields(&records[3]);
    assert_eq!(field(&start, 2).1, 8);
    assert_eq!(field(&start, 7).2, [0x08, 0x01]);
}
