//! `--device`: where a command runs.

use residual_tensor::{Device, Error};

/// The `--device` flag, shared by every command that runs a model.
#[derive(clap::Args, Clone)]
pub struct DeviceArg {
    /// Device: cpu, or wgpu (the GPU adapter wgpu picks; lavapipe without a GPU).
    #[arg(long = "device", default_value = "cpu", value_parser = ["cpu", "wgpu"])]
    name: String,
}

impl DeviceArg {
    /// The named device: `cpu`, or `wgpu` (`WGPU_ADAPTER_NAME` / `WGPU_BACKEND`
    /// choose the adapter). An error says why when no adapter exists.
    pub fn open(&self) -> Result<Device, Error> {
        match self.name.as_str() {
            "cpu" => Ok(Device::cpu()),
            "wgpu" => {
                let dev = residual_wgpu::device()?;
                eprintln!("device: {dev}");
                Ok(dev)
            }
            other => Err(Error::arg(
                "--device",
                format!("expected cpu or wgpu, got {other:?}"),
            )),
        }
    }
}
