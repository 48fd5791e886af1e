//! `--precision`: the arithmetic of an inference command (`predict`, `eval`).

use residual_tensor::Device;
use residual_zoo::Precision;

/// The `--precision` flag of the inference commands.
#[derive(clap::Args, Clone)]
pub struct PrecisionArg {
    /// Inference arithmetic: f32 (PyTorch parity), or bf16 (convolutions and
    /// linear layers on bf16 weights cast once and bf16 activations, f32
    /// accumulation: faster, logits within about 1% of f32's range; fast where
    /// the CPU has AVX512-BF16 or AMX).
    #[arg(long, default_value = "f32", value_parser = ["f32", "bf16"])]
    precision: String,
}

impl PrecisionArg {
    /// The precision named, after a note on stderr when `dev` has no native
    /// bf16 products (the bf16-rounded values then go through f32 products:
    /// bf16's numerics, slower than f32).
    pub fn resolve(&self, dev: &Device) -> Result<Precision, residual_tensor::Error> {
        let p: Precision = self.precision.parse()?;
        if p == Precision::Bf16 && !native_bf16(dev) {
            eprintln!(
                "note: {dev} has no native bf16 products (AVX512-BF16 or AMX); --precision bf16 \
                 computes bf16-rounded values with f32 products, slower than --precision f32"
            );
        }
        Ok(p)
    }
}

/// Whether `dev` multiplies bf16 operands natively.
fn native_bf16(dev: &Device) -> bool {
    dev.is_cpu() && residual_tensor::cpu::gemm_bf16::available()
}
