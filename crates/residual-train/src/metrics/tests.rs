use super::process::{parse_boot_time, parse_stat};
use super::server::{encode, MetricsServer};
use super::*;
use std::io::{Read, Write};

fn stats(step: u64) -> StepStats {
    StepStats {
        epoch: 0,
        step,
        batch: 0,
        batches: 10,
        loss: 0.5,
        acc: 0.25,
        lr: 0.125,
        img_per_s: 300.0,
        grad_norm: 2.0,
        loss_scale: None,
        skipped: false,
        comm_seconds: None,
        layer_grad_norms: Some(vec![("conv1".into(), 0.75), ("fc".into(), 1.5)]),
        layer_weight_stats: Some(vec![("conv1".into(), 0.0625, 0.5)]),
        zero_activations: Some(vec![("stem".into(), 0.375)]),
        histograms: None,
    }
}

/// The lines of `text` that start with `name{` or `name ` (its samples).
fn samples<'a>(text: &'a str, name: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .collect()
}

#[test]
fn a_step_sets_every_gauge_with_the_run_label_and_layers_by_depth() {
    let (m, reg) = TrainMetrics::new("runs/x", "resnet20", "cpu");
    m.start(100, 0, 0);
    let (before, _) = encode(&reg, None);
    assert_eq!(
        samples(&before, "residual_eval_accuracy"),
        vec!["residual_eval_accuracy{run=\"runs/x\"} NaN"],
        "no epoch has ended: no figure, not 0%"
    );
    m.step(&stats(1), 64);
    m.step(&stats(2), 64);
    m.epoch(&EpochMetrics {
        epoch: 1,
        train_loss: 0.75,
        train_acc: 0.5,
        eval_loss: 0.25,
        eval_acc: 0.875,
    });
    let (text, content_type) = encode(&reg, None);
    assert!(content_type.starts_with("text/plain; version=0.0.4"));
    let expect = [
        ("residual_train_loss", "{run=\"runs/x\"} 0.5"),
        ("residual_train_accuracy", "{run=\"runs/x\"} 0.25"),
        ("residual_learning_rate", "{run=\"runs/x\"} 0.125"),
        ("residual_step", "{run=\"runs/x\"} 2.0"),
        ("residual_planned_steps", "{run=\"runs/x\"} 100.0"),
        ("residual_train_images_total", "{run=\"runs/x\"} 128"),
        ("residual_eval_accuracy", "{run=\"runs/x\"} 0.875"),
        ("residual_epoch", "{run=\"runs/x\"} 1.0"),
    ];
    for (name, rest) in expect {
        let lines = samples(&text, name);
        assert_eq!(lines, vec![format!("{name}{rest}")], "{name} in:\n{text}");
    }
    let fc = samples(&text, "residual_layer_grad_norm");
    assert!(
        fc.contains(&"residual_layer_grad_norm{run=\"runs/x\",layer=\"fc\",depth=\"001\"} 1.5"),
        "{fc:?}"
    );
    assert_eq!(
        samples(&text, "residual_zero_activation_fraction"),
        vec![
            "residual_zero_activation_fraction{run=\"runs/x\",block=\"stem\",depth=\"000\"} 0.375"
        ]
    );
    assert_eq!(
        samples(&text, "residual_run_info"),
        vec!["residual_run_info{run=\"runs/x\",model=\"resnet20\",device=\"cpu\"} 1"]
    );
    assert!(text.contains("# TYPE residual_train_images_total counter"));
    if cfg!(target_os = "linux") {
        assert_eq!(
            samples(&text, "process_resident_memory_bytes").len(),
            1,
            "{text}"
        );
        assert_eq!(
            samples(&text, "process_cpu_seconds_total").len(),
            1,
            "{text}"
        );
    }
}

#[test]
fn openmetrics_is_served_to_a_scraper_that_asks_for_it() {
    let (_, reg) = TrainMetrics::new("r", "m", "cpu");
    let (text, content_type) = encode(
        &reg,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(content_type.starts_with("application/openmetrics-text"));
    assert!(text.ends_with("# EOF\n"), "{text}");
}

#[test]
fn proc_stat_parses_past_a_command_with_spaces_and_parentheses() {
    // Fields 3.. of a real /proc/self/stat line; the command is "a) (b".
    let stat = "1234 (a) (b) S 1 1234 1234 0 -1 4194304 100 0 0 0 250 50 0 0 20 0 7 0 \
                1000 8192000 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0";
    let s = parse_stat(stat, 1_700_000_000.0, 9).unwrap();
    let ticks = 100.0; // CLK_TCK on Linux
    assert_eq!(s.cpu_seconds, 300.0 / ticks);
    assert_eq!(s.threads, 7.0);
    assert_eq!(s.start_time_seconds, 1_700_000_000.0 + 1000.0 / ticks);
    assert_eq!(s.virtual_bytes, 8_192_000.0);
    assert!(s.resident_bytes >= 300.0 * 4096.0);
    assert_eq!(s.open_fds, 9.0);
    assert_eq!(parse_stat("garbage", 0.0, 0), None);
    assert_eq!(
        parse_boot_time("cpu 1 2\nbtime 1700000000\n"),
        Some(1_700_000_000.0)
    );
    assert_eq!(parse_boot_time("cpu 1 2\n"), None);
}

/// One HTTP/1.0 GET of `path` from `addr`: (status line, body).
fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

#[test]
fn the_server_answers_metrics_and_404_and_stops_when_dropped() {
    let (m, reg) = TrainMetrics::new("r", "m", "cpu");
    let server = MetricsServer::start("127.0.0.1:0", reg).unwrap();
    let addr = server.addr();
    assert_ne!(addr.port(), 0);
    m.step(&stats(7), 8);
    let (status, body) = get(addr, "/metrics");
    assert!(status.contains("200"), "{status}");
    assert_eq!(
        samples(&body, "residual_step"),
        vec!["residual_step{run=\"r\"} 7.0"]
    );
    let (status, _) = get(addr, "/nothing");
    assert!(status.contains("404"), "{status}");
    drop(server);
    // tiny_http closes its listener on its own thread, soon after the drop.
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            t0.elapsed().as_secs() < 10,
            "still listening 10 s after the drop"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn an_address_that_cannot_be_served_is_named() {
    for bad in ["nonsense", "127.0.0.1:99999", "300.1.1.1:80"] {
        let (_, reg) = TrainMetrics::new("r", "m", "cpu");
        let e = MetricsServer::start(bad, reg).err().unwrap().to_string();
        assert!(e.contains("--metrics-addr") && e.contains(bad), "{e}");
    }
    let (_, reg) = TrainMetrics::new("r", "m", "cpu");
    let first = MetricsServer::start("127.0.0.1:0", reg).unwrap();
    let taken = first.addr().to_string();
    let (_, reg) = TrainMetrics::new("r", "m", "cpu");
    let e = MetricsServer::start(&taken, reg).err().unwrap().to_string();
    assert!(e.contains(&taken), "{e}");
}
