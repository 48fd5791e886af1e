//! Keeping the ranks in step: rank 0's weights and buffers broadcast at the
//! start, checksums of the training state compared, configurations compared.

use super::collective::Collective;
use crate::optim::Optimizer;
use residual_nn::{named_tensors, Module, ParamKind};
use residual_tensor::{Error, Result, Tensor};

/// Replaces every parameter and buffer of `model` (trainable, frozen and
/// buffers alike, in [`named_tensors`] order) by rank 0's, in one message.
pub fn broadcast_model(c: &dyn Collective, model: &dyn Module) -> Result<()> {
    broadcast_where(c, model, |_| true)
}

/// Replaces the buffers of `model` (batch norm's running statistics) by rank
/// 0's: DistributedDataParallel's `broadcast_buffers`, before every forward
/// of a run whose ranks keep their own batch statistics.
pub fn broadcast_buffers(c: &dyn Collective, model: &dyn Module) -> Result<()> {
    broadcast_where(c, model, |k| k == ParamKind::Buffer)
}

/// Broadcasts from rank 0 the tensors of `model` whose kind `keep` selects.
fn broadcast_where(
    c: &dyn Collective,
    model: &dyn Module,
    keep: impl Fn(ParamKind) -> bool,
) -> Result<()> {
    if c.world_size() == 1 {
        return Ok(());
    }
    let named: Vec<_> = named_tensors(model)
        .into_iter()
        .filter(|(_, p)| keep(p.kind()))
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let mut flat = Vec::new();
    for (_, p) in &named {
        flat.extend(p.get().to_vec()?);
    }
    c.broadcast(&mut flat, 0)?;
    let mut offset = 0;
    for (_, p) in &named {
        let t = p.get();
        let n = t.numel();
        let v = Tensor::from_vec(
            flat[offset..offset + n].to_vec(),
            t.shape().clone(),
            t.device(),
        )?;
        p.set(v.cast(t.dtype())?);
        offset += n;
    }
    Ok(())
}

/// FNV-1a over the bits of every value of `tensors`, with their names.
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= *b as u64;
        *hash = hash.wrapping_mul(0x100_0000_01b3);
    }
}

/// A checksum of the training state: every parameter and buffer of `model`
/// and the optimizer's state and step, bit for bit (not the loss scaler's
/// scale, which every rank updates from the same averaged gradients). Equal
/// on every rank while the ranks agree.
pub fn state_checksum(model: &dyn Module, optimizer: &Optimizer) -> Result<u64> {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let (state, step) = optimizer.state_tensors();
    let tensors = named_tensors(model)
        .into_iter()
        .map(|(n, p)| (n, p.get()))
        .chain(state);
    for (name, t) in tensors {
        fnv(&mut hash, name.as_bytes());
        let v = t.to_vec()?;
        let bits: Vec<u8> = v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect();
        fnv(&mut hash, &bits);
    }
    fnv(&mut hash, &step.to_le_bytes());
    Ok(hash)
}

/// The ranks whose flag is set, after an all-reduce of one flag per rank.
fn flagged_ranks(c: &dyn Collective, mine: bool) -> Result<Vec<usize>> {
    let mut flags = vec![0.0f32; c.world_size()];
    flags[c.rank()] = mine as u8 as f32;
    c.all_reduce_sum(&mut flags)?;
    Ok(flags
        .iter()
        .enumerate()
        .filter(|(_, f)| **f > 0.0)
        .map(|(r, _)| r)
        .collect())
}

/// Compares `value` (a checksum of `what`) with rank 0's on every rank:
/// each rank errs, naming the ranks that differ, when any does.
pub fn verify_same(c: &dyn Collective, what: &str, value: u64) -> Result<()> {
    if c.world_size() == 1 {
        return Ok(());
    }
    // Four 16-bit pieces: exact in f32.
    let mut pieces: Vec<f32> = (0..4)
        .map(|i| ((value >> (16 * i)) & 0xffff) as f32)
        .collect();
    c.broadcast(&mut pieces, 0)?;
    let root = pieces
        .iter()
        .enumerate()
        .fold(0u64, |h, (i, p)| h | ((*p as u64) << (16 * i)));
    let differ = flagged_ranks(c, root != value)?;
    if differ.is_empty() {
        return Ok(());
    }
    Err(Error::arg(
        "distributed",
        format!(
            "{what} of rank(s) {differ:?} differ(s) from rank 0's (checksums; this is rank {}): \
             the ranks no longer train one model",
            c.rank()
        ),
    ))
}

/// Compares this rank's configuration (`json`, the run's `TrainConfig` and
/// data as JSON) with rank 0's before training: on a mismatch every rank errs,
/// and each differing rank names the settings that differ.
pub fn verify_config(c: &dyn Collective, json: &str) -> Result<()> {
    if c.world_size() == 1 {
        return Ok(());
    }
    let mut len = [json.len() as f32];
    c.broadcast(&mut len, 0)?;
    let mut bytes: Vec<f32> = match c.rank() {
        0 => json.bytes().map(|b| b as f32).collect(),
        _ => vec![0.0; len[0] as usize],
    };
    c.broadcast(&mut bytes, 0)?;
    let root: Vec<u8> = bytes.iter().map(|&b| b as u8).collect();
    let same = root == json.as_bytes();
    let root = String::from_utf8_lossy(&root);
    let differ = flagged_ranks(c, !same)?;
    if differ.is_empty() {
        return Ok(());
    }
    let detail = if same {
        String::new()
    } else {
        let (mine, theirs): (serde_json::Value, serde_json::Value) = (
            serde_json::from_str(json).unwrap_or_default(),
            serde_json::from_str(&root).unwrap_or_default(),
        );
        let keys: Vec<String> = match (mine.as_object(), theirs.as_object()) {
            (Some(a), Some(b)) => a
                .keys()
                .chain(b.keys().filter(|k| !a.contains_key(*k)))
                .filter(|k| a.get(*k) != b.get(*k))
                .map(|k| {
                    format!(
                        "{k} ({} here, {} on rank 0)",
                        short(a.get(k)),
                        short(b.get(k))
                    )
                })
                .collect(),
            _ => vec!["the whole configuration".into()],
        };
        format!("; here (rank {}): {}", c.rank(), keys.join(", "))
    };
    Err(Error::arg(
        "distributed",
        format!(
            "the ranks were started with different configurations: rank(s) {differ:?} differ(s) \
             from rank 0{detail}. Start every rank with the same flags and data"
        ),
    ))
}

/// A JSON value for an error message, cut to 60 characters.
fn short(v: Option<&serde_json::Value>) -> String {
    let s = v.map_or("nothing".to_string(), |v| v.to_string());
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}
