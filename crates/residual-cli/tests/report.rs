//! `residual report RUN_DIR` writes one self-contained HTML page of a run:
//! every section's chart inline, the model and the log's final figures, no
//! external resources; bad folders get errors that name the problem; and the
//! page renders in headless Chromium (where `/usr/bin/chromium` exists).

mod common;

use common::{log_records, residual, stderr, Tiny};
use residual_tensor::test_skip;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A model config file name that needs escaping in HTML.
const ODD_MODEL: &str = "tiny <&> \"model\".toml";

/// Trains the tiny run (2 epochs of 8 steps, per-layer records every 2
/// steps) with its model config under [`ODD_MODEL`]'s name, into `run`.
fn trained(tiny: &Tiny, run: &str) -> PathBuf {
    std::fs::copy(tiny.path("tiny.toml"), tiny.path(ODD_MODEL)).unwrap();
    let mut args = tiny.train_args(run, &["--epochs", "2", "--log-every", "2"]);
    let model = args.iter().position(|a| a == "--model").unwrap() + 1;
    args[model] = tiny.path(ODD_MODEL).to_str().unwrap().to_string();
    let o = residual(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(o.status.success(), "{}", stderr(&o));
    tiny.path(run)
}

/// `residual report DIR extra...`, which must succeed.
fn report(dir: &Path, extra: &[&str]) {
    let mut args = vec!["report", dir.to_str().unwrap()];
    args.extend(extra);
    let o = residual(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.starts_with("report: "), "{out}");
}

/// The text of the element of id `id`, and its `data-value`.
fn figure(html: &str, id: &str) -> (String, String) {
    let at = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    let data = tag
        .split("data-value=\"")
        .nth(1)
        .unwrap_or("")
        .split('"')
        .next()
        .unwrap();
    let text = &html[at + tag.len() + 1..];
    (
        text[..text.find('<').unwrap()].to_string(),
        data.to_string(),
    )
}

#[test]
fn a_run_gets_one_self_contained_page_with_every_section() {
    let tiny = Tiny::new();
    let run = trained(&tiny, "run");
    report(&run, &[]);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));

    // Self-contained: nothing fetched from elsewhere.
    let lower = html.to_lowercase();
    for outside in [
        "src=\"http",
        "<script",
        "<link",
        "<img",
        "@import",
        "url(",
        "<iframe",
    ] {
        assert!(!lower.contains(outside), "the page has {outside:?}");
    }

    // Each section's charts, inline.
    for id in [
        "fig-training",
        "fig-per-epoch",
        "fig-optimizer",
        "fig-grad-heatmap",
        "fig-grad-lines",
        "fig-weight-std",
        "fig-weight-mean",
        "fig-weight-lines",
        "fig-dead-heatmap",
        "fig-dead-bars",
    ] {
        let at = html
            .find(&format!("<figure id=\"{id}\"><svg"))
            .unwrap_or_else(|| panic!("no inline SVG in #{id}"));
        let end = at + html[at..].find("</figure>").unwrap();
        assert!(html[at..end].contains("</svg>"), "#{id}: a whole SVG");
    }
    assert!(html.contains("<polyline"), "plotters' curves");
    assert!(html.contains("gradient L2 norm by layer and step"));
    // The heatmap's rows name the layers the log names.
    let records = log_records(&run);
    let layers = records
        .iter()
        .find_map(|v| v["layer_grad_norms"].as_array().cloned())
        .unwrap();
    for l in &layers {
        let name = l[0].as_str().unwrap();
        assert!(
            html.contains(&format!(">{name}</text>")),
            "row label {name}"
        );
    }

    // The model, escaped.
    assert!(
        html.contains("tiny &lt;&amp;&gt; &quot;model&quot;.toml"),
        "the model's name, escaped"
    );
    assert!(
        !html.contains(ODD_MODEL),
        "the raw name never reaches the page"
    );

    // The final figures are the log's.
    let epochs: Vec<&serde_json::Value> = records
        .iter()
        .filter(|v| v.get("test_acc").is_some())
        .collect();
    assert_eq!(epochs.len(), 2);
    let last = epochs[1];
    let acc = last["test_acc"].as_f64().unwrap() as f32;
    let (shown, raw) = figure(&html, "final-test-acc");
    assert_eq!(shown, format!("{:.2}%", acc * 100.0));
    assert_eq!(raw.parse::<f32>().unwrap(), acc);
    let loss = last["test_loss"].as_f64().unwrap() as f32;
    assert_eq!(
        figure(&html, "final-test-loss").1.parse::<f32>().unwrap(),
        loss
    );
    let best = epochs
        .iter()
        .map(|v| v["test_acc"].as_f64().unwrap() as f32)
        .fold(0.0, f32::max);
    assert_eq!(
        figure(&html, "best-test-acc").1.parse::<f32>().unwrap(),
        best
    );
    assert_eq!(figure(&html, "total-steps").0, "16");
    // Evaluated on the held-out split, and named so.
    assert!(html.contains("held-out accuracy (epoch 2)") && html.contains("<th>held-out acc</th>"));
    assert!(
        !html.contains("validation"),
        "no --val-fraction: no validation split"
    );
    assert!(
        html.contains("<th>batch size</th><td>4</td>"),
        "the run's configuration"
    );
    assert_eq!(
        html.matches("<tr><td>").count() + html.matches("<tr class=\"best\"><td>").count(),
        2,
        "one table row per epoch"
    );

    // --output writes elsewhere, the run folder's copy untouched.
    let elsewhere = tiny.path("elsewhere.html");
    report(&run, &["--output", elsewhere.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), html);

    // A torn last line (a crash mid-write) is skipped and said.
    let log = run.join("log.jsonl");
    let whole = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, format!("{whole}{{\"epoch\": 2, \"step\": 17, \"lo")).unwrap();
    report(&run, &[]);
    let torn = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(torn.contains("1 line(s) of log.jsonl were not whole records"));
}

#[test]
fn a_val_fraction_run_names_its_figures_validation() {
    let tiny = Tiny::new();
    let o = tiny.train("run", &["--epochs", "1", "--val-fraction", "0.5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let run = tiny.path("run");
    report(&run, &[]);
    let html = std::fs::read_to_string(run.join("report.html")).unwrap();
    for label in [
        "validation accuracy (epoch 1)",
        "best validation accuracy",
        "<th>validation acc</th>",
        "validation (end of epoch)",
    ] {
        assert!(html.contains(label), "the page says {label:?}");
    }
    assert!(
        !html.contains("held-out accuracy") && !html.contains("held out"),
        "the run never evaluated on the held-out split"
    );
}

#[test]
fn bad_run_folders_get_errors_that_name_the_problem() {
    let tiny = Tiny::new();
    let fails = |dir: &Path, expect: &str| {
        let o = residual(&["report", dir.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{}: {err}", dir.display());
        assert!(
            err.contains(expect) && err.contains(dir.to_str().unwrap()),
            "{err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    };
    fails(&tiny.path("missing"), "no such run folder");
    fails(&tiny.path("digits"), "no log.jsonl");
    fails(&tiny.path("tiny.toml"), "is a file, not a run folder");
    let empty = tiny.path("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("log.jsonl"), "").unwrap();
    fails(&empty, "holds no records");
    std::fs::write(empty.join("log.jsonl"), "{\"epoch\": 0, \"st").unwrap();
    fails(&empty, "1 torn line(s) skipped");
    // A log without a checkpoint still reports, saying what is missing.
    std::fs::write(
        empty.join("log.jsonl"),
        "{\"epoch\":0,\"step\":1,\"batches\":1,\"loss\":2.3,\"acc\":0.1,\"lr\":0.1,\"grad_norm\":1,\"img_per_s\":5}\n",
    )
    .unwrap();
    report(&empty, &[]);
    let html = std::fs::read_to_string(empty.join("report.html")).unwrap();
    assert!(html.contains("state.safetensors") && html.contains("No epoch has finished yet"));
}

/// Where Chromium is installed, by the Debian package.
const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs `cmd`, killing it after `limit`; whether it exited successfully.
fn run_with_limit(cmd: &mut Command, limit: Duration) -> bool {
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.success();
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_page_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        // .ci/run installs it: in CI the page must render.
        assert!(
            !test_skip::in_ci(),
            "CI: no {CHROMIUM}, which .ci/run installs (apt-get install chromium)"
        );
        test_skip::skipped("no /usr/bin/chromium to render the page (apt-get install chromium)");
        return;
    }
    let tiny = Tiny::new();
    let run = trained(&tiny, "run");
    report(&run, &[]);
    let png = tiny.path("report.png");
    let profile = tiny.path("chromium-profile");
    let ok = run_with_limit(
        Command::new(CHROMIUM).args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", profile.display()),
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,3000",
            &format!("file://{}", run.join("report.html").display()),
        ]),
        Duration::from_secs(120),
    );
    assert!(ok && png.exists(), "chromium did not write a screenshot");
    if let Ok(keep) = std::env::var("RESIDUAL_REPORT_SCREENSHOT") {
        std::fs::copy(&png, keep).unwrap();
    }
    let img = image::open(&png).expect("a PNG").to_rgb8();
    assert_eq!(img.dimensions(), (1200, 3000));
    let mut colours = std::collections::HashSet::new();
    let mut inked = 0usize;
    for p in img.pixels() {
        colours.insert(p.0);
        if p.0.iter().any(|&c| c < 200) {
            inked += 1;
        }
    }
    let total = (img.width() * img.height()) as usize;
    eprintln!(
        "screenshot: {} colours, {:.1}% inked",
        colours.len(),
        100.0 * inked as f64 / total as f64
    );
    assert!(
        colours.len() > 100,
        "the page shows more than a few colours: {}",
        colours.len()
    );
    assert!(
        inked * 50 > total,
        "text and charts cover more than 2% of the page"
    );
}
