//! The flags of `residual train`.

use crate::data::DataArgs;
use residual_tensor::Device;
use residual_train::config::AmpDtype;
use residual_zoo::ModelOptions;
use std::path::PathBuf;

/// Arguments of `residual train`.
#[derive(clap::Args)]
pub struct Args {
    /// Model: a registered name (`residual summary --help` lists them) or a
    /// .json / .toml model config file [default: resnet20].
    #[arg(long)]
    pub(super) model: Option<String>,
    #[command(flatten)]
    pub(super) data: DataArgs,
    /// Epochs [default: 8, or more for a small dataset, enough for 960 optimizer steps; the
    /// main job (resnet20 on the bundled digits): enough for 1,440 (12 epochs); with
    /// --resume, the run's own, and more extend it].
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one::<u64>)]
    pub(super) epochs: Option<u64>,
    /// Samples per batch [default: 64].
    #[arg(long, allow_negative_numbers = true, value_parser = at_least_one::<usize>)]
    pub(super) batch_size: Option<usize>,
    /// Base learning rate (default: 0.1 for sgd, 1e-3 for adamw).
    #[arg(long, allow_negative_numbers = true)]
    pub(super) lr: Option<f32>,
    /// Optimizer: sgd (momentum 0.9, Nesterov, weight decay 5e-4) or adamw (PyTorch's defaults) [default: sgd].
    #[arg(long, value_parser = ["sgd", "adamw"])]
    pub(super) optimizer: Option<String>,
    /// Weight decay (sgd: L2 penalty, adamw: decoupled; none on biases and norm parameters)
    /// [default: 5e-4 for sgd, 1e-2 for adamw].
    #[arg(long, allow_hyphen_values = true)]
    pub(super) weight_decay: Option<f32>,
    /// Schedule: constant, step:SIZE:GAMMA, multistep:M1,M2:GAMMA, cosine[:WARMUP] or onecycle (steps are optimizer steps) [default: onecycle].
    #[arg(long)]
    pub(super) schedule: Option<String>,
    /// Clip gradients to this global L2 norm.
    #[arg(long, allow_negative_numbers = true)]
    pub(super) clip_grad_norm: Option<f32>,
    /// Cross-entropy label smoothing in [0, 1] [default: 0].
    #[arg(long, allow_negative_numbers = true)]
    pub(super) label_smoothing: Option<f32>,
    /// Freeze batch norm (running statistics, fixed affine terms): the
    /// model's `norm` setting becomes `frozen_batch`.
    #[arg(long)]
    pub(super) freeze_bn: bool,
    /// The model's normalisation setting: batch or group (GroupNorm, 32
    /// groups, for small batches); the model's own when not given.
    #[arg(long, value_parser = ["batch", "group"])]
    pub(super) norm: Option<String>,
    /// The model's activation setting: relu, gelu or silu; the model's own
    /// when not given.
    #[arg(long, value_parser = ["relu", "gelu", "silu"])]
    pub(super) act: Option<String>,
    /// Seed of initialisation, data order and augmentation [default: 0].
    #[arg(long)]
    pub(super) seed: Option<u64>,
    /// Mixed precision: convolutions and the classifier in half precision
    /// (bf16 on the CPU, f16 on a GPU with f16 arithmetic), norms and the loss
    /// in f32, f32 master weights; f16 scales the loss dynamically.
    #[arg(long)]
    pub(super) amp: bool,
    /// The half-precision dtype of --amp instead of the device's default (implies --amp).
    #[arg(long, value_parser = ["bf16", "f16"])]
    pub(super) amp_dtype: Option<String>,
    #[command(flatten)]
    pub(super) device: crate::device::DeviceArg,
    /// Run folder for the checkpoint and the log [default: runs/mnist].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Continue the run saved in this folder, with its configuration and its
    /// data (--epochs may extend it; flags that would change it are refused).
    #[arg(long)]
    pub(super) resume: Option<PathBuf>,
    /// Steps between per-layer records (gradient norms, weights, dead units) in
    /// the log and TensorBoard, with weight and gradient histograms [default: 20].
    #[arg(long)]
    pub(super) log_every: Option<u64>,
    /// Serve the run's metrics for Prometheus at http://HOST:PORT/metrics while
    /// it trains (port 0: any free port, printed at the start).
    #[arg(long, value_name = "HOST:PORT")]
    pub(super) metrics_addr: Option<String>,
    /// Train as N data-parallel replicas in this process (threads), each on
    /// its share of the global batch: the semantics of N MPI processes, for
    /// models too small to keep the cores busy inside one kernel [default: 2
    /// for the bundled digits (the main job) when the batch is even, 1 otherwise].
    #[arg(long, value_name = "N", value_parser = at_least_one::<usize>)]
    pub(super) replicas: Option<usize>,
    /// After every epoch, recalibrate the batch norms' running statistics on N
    /// training images read without augmentation ("precise BN"); 0 for none
    /// [default: 2048 for the bundled digits (the main job), 0 otherwise].
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub(super) precise_bn: Option<usize>,
    /// Under mpirun: batch norm with the statistics of the whole global batch
    /// over every process (SyncBatchNorm) instead of each process's own.
    #[arg(long)]
    pub(super) sync_bn: bool,
    /// Under mpirun: seconds a process waits for the others in a collective
    /// operation before it gives up and ends the job (one died or hangs) [default: 300].
    #[arg(long, value_name = "SECONDS", value_parser = at_least_one::<u64>)]
    pub(super) collective_timeout: Option<u64>,
}

/// Parses a count that must be at least 1, naming the range (and taking
/// negative numbers, so that `-3` gets this message, not "unexpected argument").
fn at_least_one<T: TryFrom<u128>>(s: &str) -> Result<T, String> {
    let v: i128 = s
        .trim()
        .parse()
        .map_err(|_| format!("expected a whole number >= 1, got {s:?}"))?;
    let too_large = || format!("{v} is too large");
    if v < 1 {
        return Err(format!("must be at least 1, got {v}"));
    }
    T::try_from(v as u128).map_err(|_| too_large())
}

impl Args {
    /// The mixed-precision dtype the flags ask for, on `dev`: see [`amp_for`].
    pub(super) fn amp_dtype(&self, dev: &Device) -> Option<AmpDtype> {
        amp_for(
            self.amp,
            self.amp_dtype.as_deref(),
            AmpDtype::for_device(dev),
            !dev.is_cpu() || residual_tensor::cpu::gemm_bf16::available(),
        )
    }

    /// The mixed-precision dtype the flags name, on a device with native half
    /// products: what a resumed run's stored dtype is compared with.
    pub(super) fn requested_amp_dtype(&self, dev: &Device) -> Option<AmpDtype> {
        amp_for(
            self.amp,
            self.amp_dtype.as_deref(),
            AmpDtype::for_device(dev),
            true,
        )
    }

    /// Whether `--amp` computes in f32 here because the CPU has no native
    /// bf16 products ([`amp_for`]), for the front end to say so once.
    pub(super) fn amp_falls_back_to_f32(&self, dev: &Device) -> bool {
        self.amp && self.amp_dtype.is_none() && self.amp_dtype(dev).is_none()
    }

    /// The model options `--norm` and `--act` set.
    pub(super) fn model_options(&self) -> ModelOptions {
        let mut opts = ModelOptions::default();
        if let Some(norm) = &self.norm {
            opts = opts.set("norm", norm.as_str());
        }
        if let Some(act) = &self.act {
            opts = opts.set("act", act.as_str());
        }
        opts
    }
}

/// The mixed-precision dtype of `--amp` (`amp`) and `--amp-dtype`
/// (`explicit`) on a device whose autocast dtype is `device_dtype`:
/// `--amp-dtype` as given; `--amp` alone the device's dtype, except bf16 on a
/// CPU without native bf16 products (`native_half` false: no AVX512-BF16),
/// where every half GEMM would upcast to f32 and train slower than f32 does
/// (2.9 against 3.5 img/s on ResNet-50, 2026-12-01's AVX2 machine): there
/// the run computes in f32.
pub(super) fn amp_for(
    amp: bool,
    explicit: Option<&str>,
    device_dtype: AmpDtype,
    native_half: bool,
) -> Option<AmpDtype> {
    match explicit {
        Some("f16") => Some(AmpDtype::F16),
        Some(_) => Some(AmpDtype::Bf16),
        None if !amp => None,
        None if device_dtype == AmpDtype::Bf16 && !native_half => None,
        None => Some(device_dtype),
    }
}

/// A family setting of a model config (`norm`, `act`) as a string.
pub(super) fn setting(config: &residual_zoo::ModelConfig, key: &str) -> Option<String> {
    serde_json::to_value(config)
        .ok()?
        .get(key)?
        .as_str()
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amp_computes_in_f32_on_a_cpu_without_native_bf16_unless_a_dtype_is_named() {
        use AmpDtype::*;
        assert_eq!(amp_for(true, None, Bf16, true), Some(Bf16));
        assert_eq!(amp_for(true, None, Bf16, false), None);
        assert_eq!(amp_for(true, None, F16, true), Some(F16));
        assert_eq!(amp_for(false, None, Bf16, true), None);
        // --amp-dtype is the user's explicit choice: kept.
        assert_eq!(amp_for(false, Some("bf16"), Bf16, false), Some(Bf16));
        assert_eq!(amp_for(true, Some("f16"), Bf16, false), Some(F16));
    }
}
