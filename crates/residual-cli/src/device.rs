//! `--device`: where a command runs.

use residual_tensor::{Device, Error};

/// Values `--device` accepts.
pub const CHOICES: [&str; 2] = ["cpu", "wgpu"];

/// The device named by `--device`: `cpu`, or `wgpu` (the GPU adapter wgpu
/// picks; `WGPU_ADAPTER_NAME` / `WGPU_BACKEND` choose another). An error says
/// why when no adapter exists.
pub fn parse(name: &str) -> Result<Device, Error> {
    match name {
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
