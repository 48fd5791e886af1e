//! Dropout and DropPath (stochastic depth), seeded per call.

use crate::module::{Mode, Module, Visitor};
use residual_tensor::{Error, Result, Tensor};
use std::sync::atomic::{AtomicU64, Ordering};

/// Draws a fresh seed per training forward from a seeded counter.
#[derive(Debug)]
struct SeedCounter {
    seed: u64,
    calls: AtomicU64,
}

impl SeedCounter {
    fn next(&self) -> u64 {
        residual_tensor::rng::hash64(self.seed, self.calls.fetch_add(1, Ordering::Relaxed))
    }
}

fn check_p(op: &'static str, p: f32) -> Result<()> {
    if !(0.0..1.0).contains(&p) {
        return Err(Error::arg(
            op,
            format!("probability must be in [0, 1), got {p}"),
        ));
    }
    Ok(())
}

/// `torch.nn.Dropout`: in training, zeroes elements with probability `p`.
#[derive(Debug)]
pub struct Dropout {
    p: f32,
    seeds: SeedCounter,
}

impl Dropout {
    /// Dropout with probability `p`, its masks drawn from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        check_p("Dropout", p)?;
        Ok(Dropout {
            p,
            seeds: SeedCounter {
                seed,
                calls: AtomicU64::new(0),
            },
        })
    }
}

impl Module for Dropout {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = match mode {
            Mode::Train if self.p > 0.0 => x.dropout(self.p, self.seeds.next())?,
            _ => x.clone(),
        };
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}

/// Stochastic depth (timm's `DropPath`): in training, drops the whole residual
/// branch of a sample with probability `p` and scales kept ones by `1/(1-p)`.
#[derive(Debug)]
pub struct DropPath {
    p: f32,
    seeds: SeedCounter,
}

impl DropPath {
    /// DropPath with probability `p`, drawn from `seed`.
    pub fn new(p: f32, seed: u64) -> Result<Self> {
        check_p("DropPath", p)?;
        Ok(DropPath {
            p,
            seeds: SeedCounter {
                seed,
                calls: AtomicU64::new(0),
            },
        })
    }
}

impl Module for DropPath {
    fn forward(&self, x: &Tensor, mode: Mode) -> Result<Tensor> {
        let y = if mode == Mode::Eval || self.p == 0.0 {
            x.clone()
        } else {
            // One keep/drop decision per sample: dropout of a ones tensor [N, 1, ...].
            let mut shape = vec![1; x.rank()];
            shape[0] = x.dims()[0];
            let mask = Tensor::ones(shape, x.device())?.dropout(self.p, self.seeds.next())?;
            x.mul(&mask)?
        };
        crate::trace::record(self, &y);
        Ok(y)
    }
    fn visit(&self, _f: &mut Visitor<'_>) {}
}
