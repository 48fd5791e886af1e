//! The peers of a case: PyTorch eager, PyTorch's frozen inference path and
//! ONNX Runtime, timed by `torch_peer.py` in a fresh `python3` process per
//! case (so that its peak memory is the case's own), right before or after
//! residual times the same case.

use crate::cases::Case;
use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The peer script, written once to a temporary file for the run.
pub struct Peers {
    script: PathBuf,
    device: &'static str,
    /// `torch x.y, torchvision x.y, timm x.y, onnxruntime x.y` as the peer reports them.
    pub versions: String,
}

impl Peers {
    /// The peers on `device` (`cpu` or `cuda`), or why there are none
    /// (PyTorch not importable).
    pub fn start(device: &'static str) -> Result<Peers, String> {
        let probe = Command::new("python3")
            .args([
                "-c",
                "import torch, torchvision\n\
                 try:\n    import onnxruntime as o; ort = 'onnxruntime ' + o.__version__\n\
                 except ImportError:\n    ort = 'no onnxruntime'\n\
                 try:\n    import timm; tm = 'timm ' + timm.__version__\n\
                 except ImportError:\n    tm = 'no timm'\n\
                 print(f'torch {torch.__version__}, torchvision {torchvision.__version__}, {tm}, {ort}')",
            ])
            .stderr(Stdio::null())
            .output();
        let versions = match probe {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            _ => {
                return Err(
                    "python3 -c \"import torch, torchvision\" failed: no PyTorch figures in \
                     this run (pip install torch torchvision timm onnxruntime onnx)"
                        .into(),
                )
            }
        };
        if device == "cuda" {
            let cuda = Command::new("python3")
                .args([
                    "-c",
                    "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 3)",
                ])
                .stderr(Stdio::null())
                .status();
            if !matches!(cuda, Ok(s) if s.success()) {
                return Err(
                    "PyTorch has no CUDA device here: no PyTorch figures beside the GPU's".into(),
                );
            }
        }
        let script =
            std::env::temp_dir().join(format!("residual_torch_peer_{}.py", std::process::id()));
        std::fs::write(&script, include_str!("torch_peer.py"))
            .map_err(|e| format!("could not write {}: {e}", script.display()))?;
        Ok(Peers {
            script,
            device,
            versions,
        })
    }

    /// The peers' figures for `case` on `threads` threads: `torch_gflops`,
    /// `torch_peak_mem_mb`, and for inference `torch_frozen_gflops` and
    /// `ort_gflops` (or notes saying why not).
    pub fn time(&self, case: &Case, threads: usize) -> Result<Value, String> {
        let mut child = Command::new("python3")
            .arg(&self.script)
            .args([crate::run::MIN_SECS.to_string(), self.device.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start python3: {e}"))?;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(case.peer_spec(threads, self.device).to_string().as_bytes())
            .map_err(|e| e.to_string())?;
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.code() == Some(3) {
            return Err(
                "PyTorch has no CUDA device here: no PyTorch figures beside the GPU's".into(),
            );
        }
        if !out.status.success() {
            return Err(format!(
                "the PyTorch timing script failed on {:?} (see stderr above)",
                case.name
            ));
        }
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .rev()
            .find_map(|l| serde_json::from_str::<Value>(l).ok())
            .ok_or_else(|| {
                format!(
                    "the PyTorch timing script printed no figures for {:?}",
                    case.name
                )
            })
    }
}

impl Drop for Peers {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.script);
    }
}
