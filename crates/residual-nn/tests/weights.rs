//! Safetensors load / save: names, strictness, conversions, corruption, atomicity.

use residual_nn::weights::*;
use residual_nn::*;
use residual_tensor::{Device, Tensor};
use safetensors::tensor::{Dtype, TensorView};

fn model() -> Sequential {
    let d = Device::cpu();
    Sequential::new()
        .push(
            Conv2dConfig::new(2, 3, 3)
                .padding(1)
                .bias(true)
                .init(1, &d)
                .unwrap(),
        )
        .push(BatchNorm2d::new(3, BnMode::Normal, &d).unwrap())
}

/// A fresh folder for one test's files, removed when the test ends.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("residual-nn-tests-")
        .tempdir()
        .expect("create a temporary folder")
}

/// Serialises `(name, dtype, shape, bytes)` entries.
fn file(entries: &[(&str, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<u8> {
    let views: Vec<(String, TensorView)> = entries
        .iter()
        .map(|(n, d, s, b)| (n.to_string(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn save_then_load_round_trips_every_tensor() {
    let dir = scratch();
    let tmp = |name: &str| dir.path().join(name);
    let a = model();
    a.forward(
        &Tensor::randn([2, 2, 4, 4], 0.0, 1.0, 3, &Device::cpu()).unwrap(),
        Mode::Train,
    )
    .unwrap();
    let p = tmp("roundtrip.safetensors");
    save_safetensors(&a, &p).unwrap();
    let b = model();
    if let Some((_, w)) = named_tensors(&b).first() {
        w.set(Tensor::zeros(w.get().shape().clone(), &Device::cpu()).unwrap());
    }
    let r = load_safetensors(&b, &p, true).unwrap();
    assert!(r.is_complete() && r.loaded.len() == 7, "{r}");
    for ((na, pa), (nb, pb)) in named_tensors(&a).into_iter().zip(named_tensors(&b)) {
        assert_eq!(na, nb);
        assert_eq!(
            pa.get().to_vec().unwrap(),
            pb.get().to_vec().unwrap(),
            "{na}"
        );
    }
    // num_batches_tracked is int64 on disk, as PyTorch has it.
    let bytes = std::fs::read(&p).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(
        st.tensor("1.num_batches_tracked").unwrap().dtype(),
        Dtype::I64
    );
}

#[test]
fn strict_load_lists_missing_unexpected_and_mismatched_keys() {
    let bytes = file(&[
        (
            "0.weight",
            Dtype::F32,
            vec![3, 2, 3, 3],
            f32_bytes(&[0.5; 54]),
        ),
        ("0.bias", Dtype::F32, vec![4], f32_bytes(&[0.0; 4])),
        ("fc.weight", Dtype::F32, vec![1], f32_bytes(&[1.0])),
    ]);
    let m = model();
    let before = named_tensors(&m)[0].1.get().to_vec().unwrap();
    let err = load_safetensors_bytes(&m, &bytes, true)
        .unwrap_err()
        .to_string();
    for needle in [
        "1.running_mean",
        "1.num_batches_tracked",
        "fc.weight",
        "0.bias",
        "[4]",
        "[3]",
        "missing",
        "unexpected",
    ] {
        assert!(err.contains(needle), "{err} should mention {needle}");
    }
    assert_eq!(
        named_tensors(&m)[0].1.get().to_vec().unwrap(),
        before,
        "a failed strict load changes nothing"
    );
    // Non-strict: loads what matches, reports the rest.
    let r = load_safetensors_bytes(&m, &bytes, false).unwrap();
    assert_eq!(r.loaded, ["0.weight"]);
    assert_eq!(r.unexpected, ["fc.weight"]);
    assert_eq!(r.mismatched, [("0.bias".to_string(), vec![4], vec![3])]);
    assert_eq!(r.missing.len(), 5);
    assert_eq!(
        named_tensors(&m)[0].1.get().to_vec().unwrap(),
        vec![0.5; 54]
    );
}

#[test]
fn load_converts_dtypes_and_strips_module_prefix() {
    let h: Vec<u8> = (0..54)
        .flat_map(|i| half::f16::from_f32(i as f32 * 0.25).to_le_bytes())
        .collect();
    let bf: Vec<u8> = [1.5f32, -2.0, 3.0]
        .iter()
        .flat_map(|&v| half::bf16::from_f32(v).to_le_bytes())
        .collect();
    let f64s: Vec<u8> = [0.1f64, 0.2, 0.3]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bytes = file(&[
        ("module.0.weight", Dtype::F16, vec![3, 2, 3, 3], h),
        ("module.0.bias", Dtype::BF16, vec![3], bf),
        ("module.1.weight", Dtype::F64, vec![3], f64s),
        ("module.1.bias", Dtype::F32, vec![3], f32_bytes(&[0.0; 3])),
        (
            "module.1.running_mean",
            Dtype::F32,
            vec![3],
            f32_bytes(&[0.0; 3]),
        ),
        (
            "module.1.running_var",
            Dtype::F32,
            vec![3],
            f32_bytes(&[1.0; 3]),
        ),
        (
            "module.1.num_batches_tracked",
            Dtype::I64,
            vec![],
            42i64.to_le_bytes().to_vec(),
        ),
    ]);
    let m = model();
    let r = load_safetensors_bytes(&m, &bytes, true).unwrap();
    assert!(r.is_complete());
    let t = named_tensors(&m);
    assert_eq!(t[0].1.get().to_vec().unwrap()[..3], [0.0, 0.25, 0.5]);
    assert_eq!(t[1].1.get().to_vec().unwrap(), [1.5, -2.0, 3.0]);
    assert_eq!(t[2].1.get().to_vec().unwrap(), [0.1, 0.2, 0.3]);
    assert_eq!(t[6].1.get().to_scalar().unwrap(), 42.0);
    assert!(
        t[0].1.get().requires_grad(),
        "loaded parameters stay trainable"
    );
}

#[test]
fn corrupt_truncated_or_missing_files_are_errors() {
    let dir = scratch();
    let tmp = |name: &str| dir.path().join(name);
    let m = model();
    let p = tmp("good.safetensors");
    save_safetensors(&m, &p).unwrap();
    let bytes = std::fs::read(&p).unwrap();
    for cut in [0, 7, 8, 40, bytes.len() / 2, bytes.len() - 1] {
        let err = load_safetensors_bytes(&m, &bytes[..cut], true)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not a valid safetensors file"),
            "cut at {cut}: {err}"
        );
    }
    let err = load_safetensors(&m, tmp("does-not-exist.safetensors"), true)
        .unwrap_err()
        .to_string();
    assert!(err.contains("does-not-exist.safetensors"), "{err}");
    let bad = file(&[("0.weight", Dtype::U8, vec![2], vec![1, 2])]);
    let err = load_safetensors_bytes(&m, &bad, false)
        .unwrap_err()
        .to_string();
    assert!(err.contains("0.weight") && err.contains("dtype"), "{err}");
}

/// The success path. A write that fails on the same path (the old contents
/// stay, no temporary is left) is `tests/atomic_write_failure.rs`, a binary of
/// its own because it lowers a process-wide limit.
#[test]
fn atomic_write_replaces_the_file_leaves_no_temporary_and_names_a_bad_path() {
    // A folder of this test's own: the other tests of this binary save files
    // in parallel, and their in-flight temporaries would show in a shared one.
    let scratch = scratch();
    let dir = scratch.path();
    let p = dir.join("atomic.safetensors");
    atomic_write(&p, b"first").unwrap();
    atomic_write(&p, b"second").unwrap();
    assert_eq!(std::fs::read(&p).unwrap(), b"second");
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["atomic.safetensors"], "no temporary is left");
    // Writing into a folder that does not exist fails and names the path.
    let err = atomic_write(&dir.join("no/such/dir/x.safetensors"), b"x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("x.safetensors"), "{err}");
}

#[test]
fn reads_are_bounded_by_the_file_and_refuse_devices_and_folders() {
    let m = model();
    for path in ["/dev/zero", "/dev/urandom"] {
        if !std::path::Path::new(path).exists() {
            continue;
        }
        let err = load_safetensors(&m, path, true).unwrap_err().to_string();
        assert!(
            err.contains(path) && err.contains("not a regular file"),
            "{err}"
        );
    }
    let scratch = scratch();
    let err = read_tensors(scratch.path(), &Device::cpu())
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a regular file"), "{err}");
}

#[test]
fn a_training_state_file_is_named_as_such_not_listed_as_missing_keys() {
    let m = model();
    let mut meta = std::collections::HashMap::new();
    meta.insert(TRAINING_STATE_KEY.to_string(), "{}".to_string());
    let bytes = safetensors::serialize(
        vec![(
            "model.0.weight",
            TensorView::new(Dtype::F32, vec![1], &[0u8; 4]).unwrap(),
        )],
        Some(meta),
    )
    .unwrap();
    for strict in [true, false] {
        let err = load_safetensors_bytes(&m, &bytes, strict)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("training-state file") && err.contains("model.safetensors"),
            "{err}"
        );
        assert!(!err.contains("missing"), "{err}");
    }
}

#[test]
fn temporaries_are_unique_per_write_and_stale_ones_are_removed() {
    let scratch = scratch();
    let dir = scratch.path();
    // Writes from many threads into one file never share a temporary: each
    // lands whole.
    std::thread::scope(|s| {
        for k in 0..8u8 {
            s.spawn(move || {
                for _ in 0..20 {
                    atomic_write(&dir.join("shared.bin"), &[k; 4096]).unwrap();
                }
            });
        }
    });
    let last = std::fs::read(dir.join("shared.bin")).unwrap();
    assert!(last.len() == 4096 && last.iter().all(|&b| b == last[0]));
    // A dead writer's temporaries go (both namings); a live writer's stay.
    let dead = [
        ".model.safetensors.tmp-999999999-3",
        ".state.safetensors.tmp999999999",
    ];
    let live = format!(".model.safetensors.tmp-{}-7", std::process::id());
    for name in dead.iter().copied().chain([live.as_str(), "keep.tmp-1-1"]) {
        std::fs::write(dir.join(name), b"partial").unwrap();
    }
    let removed = remove_stale_temporaries(dir).unwrap();
    let mut names: Vec<String> = removed
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, dead);
    assert!(dir.join(&live).exists() && dir.join("keep.tmp-1-1").exists());
    assert!(remove_stale_temporaries(&dir.join("absent"))
        .unwrap()
        .is_empty());
}
