//! `residual report RUN_DIR`: one self-contained HTML page of a run folder
//! written by `residual train` (its header, curves, gradient flow by depth,
//! weight distributions, dead units and epoch table), written atomically to
//! `RUN_DIR/report.html` or `--output FILE`.

mod bars;
mod colour;
mod curves;
mod grid;
mod heatmap;
mod html;
mod layers;
mod page;
mod run;
mod split;
mod summary;
mod table;

use residual_nn::weights::atomic_write;
use residual_tensor::Error;
use std::path::PathBuf;

/// Arguments of `residual report`.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder (`residual train --out`, e.g. runs/mnist).
    run_dir: PathBuf,
    /// Where to write the page (default: RUN_DIR/report.html).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Reads the run folder and writes its report page.
pub fn run(a: Args) -> Result<(), Error> {
    let run = run::Run::load(&a.run_dir)?;
    let page = page::render(&run)?;
    let out = a.output.unwrap_or_else(|| a.run_dir.join("report.html"));
    if out.is_dir() {
        return Err(Error::arg(
            "--output",
            format!("{} is a folder; name the page's file", out.display()),
        ));
    }
    atomic_write(&out, page.as_bytes())?;
    println!(
        "report: {} ({} steps, {} epoch records{})",
        out.display(),
        run.steps.last().map_or(0, |s| s.step),
        run.epochs.len(),
        match run.torn_lines {
            0 => String::new(),
            n => format!(", {n} torn log line(s) skipped"),
        }
    );
    Ok(())
}
