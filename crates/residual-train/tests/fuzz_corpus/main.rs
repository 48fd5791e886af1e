//! Every file parser against its saved fuzz corpus (`fuzz/corpus/<target>/`)
//! and a few thousand seeded mutations of it, on stable Rust: no input may
//! panic, hang, or allocate out of proportion to its size, and every
//! `valid-*` input of the corpus must be accepted. The entry points are
//! `residual_train::fuzz`'s, which the cargo-fuzz targets in `fuzz/` run
//! for the long searches (see docs/reliability.md, "Fuzzed parsers").
//!
//! A failure names the input and shows it in hex; the input is also written
//! to `target/tmp/fuzz-failures/` to add to the corpus once fixed.
//! `cargo test -p residual-train --test fuzz_corpus -- --ignored` rewrites the
//! seeds (the corpus's `valid-*` and `edge-*` files) from `seeds.rs`.

mod alloc;
mod mutate;
mod seeds;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

#[global_allocator]
static COUNTING: alloc::Counting = alloc::Counting;

/// The most a parser may allocate for an input of `len` bytes.
#[derive(Clone, Copy)]
struct Budget {
    /// Bytes any input may take (buffers, a model, decoder tables).
    base: usize,
    /// And per byte of input.
    per_byte: usize,
}

impl Budget {
    fn bytes(self, len: usize) -> usize {
        self.base.saturating_add(self.per_byte.saturating_mul(len))
    }
}

/// The longest one input may take, even on a loaded 2-core machine.
const HANG: Duration = Duration::from_secs(5);
/// The longest a whole target's run may take before it is reported hung.
const TARGET_DEADLINE: Duration = Duration::from_secs(120);

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target)
}

/// The saved corpus of `target`, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

/// `data` as a hex dump (offset, 16 bytes, ASCII), at most 4 KiB of it.
fn hex_dump(data: &[u8]) -> String {
    let mut out = format!("{} bytes:\n", data.len());
    for (i, row) in data.chunks(16).take(256).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = row
            .iter()
            .map(|&b| if b.is_ascii_graphic() { b as char } else { '.' })
            .collect();
        out += &format!("{:08x}  {:<48}  |{text}|\n", i * 16, hex.join(" "));
    }
    if data.len() > 4096 {
        out += "...\n";
    }
    out
}

thread_local! {
    /// Set while a parser runs: its panic's message lands here instead of
    /// on stderr (the failure message shows it with the input).
    static CAUGHT: RefCell<Option<Option<String>>> = const { RefCell::new(None) };
}

/// Installs (once) a panic hook that keeps quiet about the panics the
/// harness catches and reports every other panic as usual.
fn install_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = CAUGHT.with(|c| {
                let mut c = c.borrow_mut();
                match c.as_mut() {
                    Some(slot) => {
                        let bt = std::backtrace::Backtrace::force_capture();
                        *slot = Some(format!("{info}\n{bt}"));
                        true
                    }
                    None => false,
                }
            });
            if !caught {
                previous(info);
            }
        }));
    });
}

/// Runs `target` on one input: `Ok(accepted)`, or a description of the
/// failure (a panic, too long, too much memory) with the input.
fn check(
    target: &str,
    label: &str,
    data: &[u8],
    scratch: &Path,
    budget: Budget,
) -> Result<bool, String> {
    CAUGHT.with(|c| *c.borrow_mut() = Some(None));
    let start = Instant::now();
    let (result, peak) = alloc::measure(data, || {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            residual_train::fuzz::run(target, data, scratch).expect("a known target")
        }))
    });
    let took = start.elapsed();
    let panic = CAUGHT.with(|c| c.borrow_mut().take()).flatten();
    let problem = match result {
        Err(_) => format!("panicked: {}", panic.unwrap_or_default()),
        Ok(_) if took > HANG => format!("took {took:.1?} (more than {HANG:?})"),
        Ok(_) if peak > budget.bytes(data.len()) => format!(
            "allocated {peak} bytes at its peak, more than {} for {} input bytes",
            budget.bytes(data.len()),
            data.len()
        ),
        Ok(accepted) => return Ok(accepted),
    };
    let saved = save_failure(target, label, data);
    Err(format!(
        "fuzz target {target}, input {label} {problem}\ninput saved to {saved}\n{}",
        hex_dump(data)
    ))
}

/// Writes a failing input where it can be copied into the corpus.
fn save_failure(target: &str, label: &str, data: &[u8]) -> String {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    let name: String = format!("{target}-{label}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let path = dir.join(name);
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(&path, data);
    path.display().to_string()
}

/// What one target's run saw.
#[derive(Debug, Default)]
struct Stats {
    corpus: usize,
    mutations: usize,
    accepted: usize,
}

/// Replays `target`'s corpus, then `mutations` seeded mutations of it.
fn replay(
    target: &str,
    mutations: usize,
    budget: Budget,
    in_flight: &Mutex<String>,
) -> Result<Stats, String> {
    let inputs = corpus(target);
    if inputs.is_empty() {
        return Err(format!(
            "{target}: empty corpus in {}",
            corpus_dir(target).display()
        ));
    }
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut stats = Stats {
        corpus: inputs.len(),
        mutations,
        ..Stats::default()
    };
    for (name, data) in &inputs {
        *in_flight.lock().unwrap() = format!("corpus file {name}\n{}", hex_dump(data));
        let accepted = check(target, name, data, scratch.path(), budget)?;
        if name.starts_with("valid-") && !accepted {
            return Err(format!("{target}: the valid seed {name} was refused"));
        }
        stats.accepted += accepted as usize;
    }
    let mut rng = mutate::Rng::new(residual_tensor::rng::hash64(7, target.len() as u64));
    for k in 0..mutations {
        let (name, base) = &inputs[rng.below(inputs.len())];
        let other = &inputs[rng.below(inputs.len())].1;
        let data = mutate::mutate(base, other, &mut rng);
        let label = format!("mutation-{k}-of-{name}");
        *in_flight.lock().unwrap() = format!("{label}\n{}", hex_dump(&data));
        stats.accepted += check(target, &label, &data, scratch.path(), budget)? as usize;
    }
    Ok(stats)
}

/// Runs [`replay`] on a thread of its own and fails the test with the input
/// in flight when it does not finish by [`TARGET_DEADLINE`] (a hang).
fn fuzz(target: &'static str, mutations: usize, budget: Budget) {
    install_hook();
    let in_flight = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let shared = in_flight.clone();
    let start = Instant::now();
    std::thread::Builder::new()
        .name(format!("fuzz-{target}"))
        .stack_size(16 << 20)
        .spawn(move || {
            let _ = tx.send(replay(target, mutations, budget, &shared));
        })
        .unwrap();
    match rx.recv_timeout(TARGET_DEADLINE) {
        Ok(Ok(stats)) => eprintln!(
            "fuzz target {target}: {} corpus inputs + {} mutations ({} accepted) in {:.2?}",
            stats.corpus,
            stats.mutations,
            stats.accepted,
            start.elapsed()
        ),
        Ok(Err(failure)) => panic!("{failure}"),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            panic!("the harness of fuzz target {target} panicked (see above)")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!(
            "fuzz target {target} hung (more than {TARGET_DEADLINE:?}) on {}",
            in_flight.lock().unwrap()
        ),
    }
}

/// Budgets: the text and container formats allocate a small multiple of
/// their input; an image may decode to 4096 bytes per byte of its file plus
/// 4 MiB (see `DECODE_BYTES_PER_FILE_BYTE`), and be converted and resized.
const SMALL: Budget = Budget {
    base: 16 << 20,
    per_byte: 64,
};
const IDX: Budget = Budget {
    base: 16 << 20,
    // A gzipped file inflates up to 1032:1 (read into a vector that doubles).
    per_byte: 2 * 1032 + 64,
};
const IMAGE: Budget = Budget {
    base: 64 << 20,
    per_byte: 4 * 4096,
};

#[test]
fn idx_corpus_and_mutations_are_handled() {
    fuzz("idx", 3000, IDX);
}

#[test]
fn cifar_corpus_and_mutations_are_handled() {
    fuzz("cifar", 3000, SMALL);
}

#[test]
fn image_decode_corpus_and_mutations_are_handled() {
    fuzz("image_decode", 3000, IMAGE);
}

#[test]
fn image_folder_corpus_and_mutations_are_handled() {
    fuzz("image_folder", 1000, IMAGE);
}

#[test]
fn safetensors_weights_corpus_and_mutations_are_handled() {
    fuzz("safetensors_weights", 3000, SMALL);
}

#[test]
fn checkpoint_state_corpus_and_mutations_are_handled() {
    fuzz("checkpoint_state", 3000, SMALL);
}

#[test]
fn checkpoint_meta_corpus_and_mutations_are_handled() {
    fuzz("checkpoint_meta", 3000, SMALL);
}

#[test]
fn model_config_corpus_and_mutations_are_handled() {
    fuzz("model_config", 3000, SMALL);
}

#[test]
fn every_target_has_a_test_and_seeds() {
    for target in residual_train::fuzz::TARGETS {
        assert!(!seeds::seeds(target).is_empty(), "no seeds for {target}");
        assert!(corpus_dir(target).is_dir(), "no corpus for {target}");
    }
}

/// Writes the seeds of every target into `fuzz/corpus/<target>/`
/// (regression inputs found by fuzzing, named otherwise, are left alone).
#[test]
#[ignore = "rewrites fuzz/corpus; run by hand after changing seeds.rs"]
fn write_seed_corpus() {
    for target in residual_train::fuzz::TARGETS {
        let dir = corpus_dir(target);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in seeds::seeds(target) {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
}
