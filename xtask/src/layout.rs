//! `cargo xtask layout`: the project's source-layout rules, checked.
//!
//! 1. No source file (`crates/*/src/**/*.rs`, `xtask/src/**/*.rs`) is longer
//!    than [`MAX_LINES`] lines; a `#[cfg(test)] mod` block at the end of a file
//!    does not count, and neither do `tests/`, `benches/`, `examples/` and
//!    `fixtures/`.
//! 2. No file-level import circles inside a crate: see [`imports`] for how a
//!    path becomes an edge from one file to another.

mod cycles;
mod imports;
mod lex;

pub use imports::Edge;
use std::fmt;
use std::path::{Path, PathBuf};

/// The most lines a source file may have, its test module aside.
pub const MAX_LINES: usize = 800;

/// Directories whose files are exempt from the line limit.
const EXEMPT_DIRS: [&str; 4] = ["tests", "benches", "examples", "fixtures"];

/// A broken layout rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Violation {
    /// A source file longer than [`MAX_LINES`] (its counted lines).
    TooLong {
        /// The file, relative to the workspace root.
        path: PathBuf,
        /// Its lines before the test module.
        lines: usize,
    },
    /// Files that import each other, in a circle.
    Circle {
        /// The circle's files, sorted, relative to the workspace root.
        files: Vec<PathBuf>,
        /// One closed walk through all of them, each step with the use that makes it.
        edges: Vec<Edge>,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::TooLong { path, lines } => write!(
                f,
                "{}: {lines} lines (tests aside), more than {MAX_LINES}",
                path.display()
            ),
            Violation::Circle { files, edges } => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                writeln!(f, "import circle: {}", names.join(", "))?;
                for (k, e) in edges.iter().enumerate() {
                    let end = if k + 1 == edges.len() { "" } else { "\n" };
                    write!(
                        f,
                        "    {}:{} uses `{}` from {}{end}",
                        e.from.display(),
                        e.line,
                        e.path,
                        e.to.display()
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// What [`check`] looked at and found.
#[derive(Debug, Default)]
pub struct Report {
    /// Source files measured.
    pub files: usize,
    /// Crate roots whose import graphs were checked.
    pub roots: usize,
    /// Every broken rule, line counts first.
    pub violations: Vec<Violation>,
}

/// The workspace root (the directory above `xtask/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask sits in the workspace")
        .to_path_buf()
}

/// Lines of `text` that count toward the limit: those before the first line
/// that is exactly `#[cfg(test)]` and is followed by a `mod` line.
pub fn counted_lines(text: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    lines
        .windows(2)
        .position(|w| w[0].trim_end() == "#[cfg(test)]" && w[1].starts_with("mod "))
        .unwrap_or(lines.len())
}

/// Checks the crates of the workspace at `root`: `crates/*` and `xtask`.
pub fn check(root: &Path) -> std::io::Result<Report> {
    let mut crates = Vec::new();
    if let Ok(dir) = std::fs::read_dir(root.join("crates")) {
        for entry in dir {
            crates.push(entry?.path());
        }
    }
    crates.push(root.join("xtask"));
    crates.sort();
    let mut report = Report::default();
    let mut circles = Vec::new();
    let relative = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_path_buf();
    for krate in crates.iter().filter(|c| c.join("src").is_dir()) {
        let mut files = Vec::new();
        rust_files(&krate.join("src"), &mut files)?;
        for file in &files {
            let exempt = file
                .strip_prefix(krate)
                .unwrap_or(file)
                .components()
                .any(|c| EXEMPT_DIRS.iter().any(|d| c.as_os_str() == *d));
            if exempt {
                continue;
            }
            report.files += 1;
            let lines = counted_lines(&std::fs::read_to_string(file)?);
            if lines > MAX_LINES {
                report.violations.push(Violation::TooLong {
                    path: relative(file),
                    lines,
                });
            }
        }
        for crate_root in crate_roots(&krate.join("src"), &files) {
            report.roots += 1;
            for mut edges in imports::circles(&crate_root)? {
                for e in &mut edges {
                    e.from = relative(&e.from);
                    e.to = relative(&e.to);
                }
                let mut files: Vec<PathBuf> = edges.iter().map(|e| e.from.clone()).collect();
                files.sort();
                files.dedup();
                let circle = Violation::Circle { files, edges };
                if !circles.contains(&circle) {
                    circles.push(circle);
                }
            }
        }
    }
    report.violations.extend(circles);
    Ok(report)
}

/// Every `*.rs` file under `dir`, sorted.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The crate roots among a package's source files: `lib.rs`, `main.rs`,
/// `bin/*.rs` and `bin/*/main.rs`.
fn crate_roots(src: &Path, files: &[PathBuf]) -> Vec<PathBuf> {
    files
        .iter()
        .filter(|f| {
            let rel = f.strip_prefix(src).unwrap_or(f);
            let parts: Vec<&str> = rel.iter().filter_map(|c| c.to_str()).collect();
            matches!(
                parts.as_slice(),
                ["lib.rs" | "main.rs"] | ["bin", _] | ["bin", _, "main.rs"]
            )
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with one crate, `crates/demo`, holding `files`.
    fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (path, text) in files {
            let path = dir.path().join("crates/demo").join(path);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        dir
    }

    fn violations(files: &[(&str, &str)]) -> Vec<Violation> {
        let dir = workspace(files);
        check(dir.path()).expect("check").violations
    }

    fn circle_files(v: &[Violation]) -> Vec<Vec<String>> {
        v.iter()
            .filter_map(|v| match v {
                Violation::Circle { files, .. } => Some(
                    files
                        .iter()
                        .map(|f| f.display().to_string().replace("crates/demo/", ""))
                        .collect(),
                ),
                Violation::TooLong { .. } => None,
            })
            .collect()
    }

    #[test]
    fn two_file_circle_is_reported() {
        let v = violations(&[
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A(B);\n"),
            ("src/b.rs", "pub struct B;\npub fn f() { crate::a::g(); }\n"),
        ]);
        assert_eq!(circle_files(&v), [["src/a.rs", "src/b.rs"]]);
        let text = v[0].to_string();
        assert!(
            text.contains("crates/demo/src/a.rs:1 uses `crate::b::B` from crates/demo/src/b.rs")
        );
        assert!(
            text.contains("crates/demo/src/b.rs:2 uses `crate::a::g` from crates/demo/src/a.rs")
        );
    }

    #[test]
    fn parent_using_its_child_is_not_a_circle() {
        let v = violations(&[
            (
                "src/net/mod.rs",
                "mod act;\nmod conv;\nmod norm;\npub use conv::Conv;\npub use norm::Norm;\npub fn f() -> conv::Conv { conv::Conv }\n",
            ),
            ("src/net/conv.rs", "pub struct Conv;\n"),
            // A sibling's item re-exported by the parent: an edge to the sibling.
            ("src/net/norm.rs", "use super::Conv;\npub struct Norm(Conv);\n"),
            // The same through a glob re-export, and from an inline module.
            ("src/lib.rs", "mod net;\nmod ops;\npub use net::Conv;\n"),
            ("src/ops/mod.rs", "mod pool;\npub use pool::*;\n"),
            (
                "src/ops/pool.rs",
                "pub struct Pool;\nmod inner {\n    use super::Pool;\n}\n",
            ),
            ("src/net/act.rs", "use crate::ops::{self, Pool};\n"),
        ]);
        assert_eq!(v, []);
    }

    #[test]
    fn child_using_an_item_of_its_parent_file_is_a_circle() {
        let v = violations(&[
            ("src/lib.rs", "pub mod net;\n"),
            (
                "src/net/mod.rs",
                "mod conv;\npub use conv::Conv;\npub struct Helper;\n",
            ),
            (
                "src/net/conv.rs",
                "use super::Helper;\npub struct Conv(Helper);\n",
            ),
        ]);
        assert_eq!(circle_files(&v), [["src/net/conv.rs", "src/net/mod.rs"]]);
    }

    #[test]
    fn grouped_multi_line_uses_are_edges_and_tests_comments_strings_are_not() {
        let grouped = [
            ("src/lib.rs", "mod a;\nmod b;\nmod c;\n"),
            (
                "src/a.rs",
                "use crate::{\n    b::B,\n    c::{C, D as E},\n};\npub struct A;\n",
            ),
            ("src/b.rs", "pub struct B;\n"),
            (
                "src/c.rs",
                "pub struct C;\npub struct D;\nfn f() -> super::a::A { todo() }\n",
            ),
        ];
        assert_eq!(
            circle_files(&violations(&grouped)),
            [["src/a.rs", "src/c.rs"]]
        );
        let quiet = [
            ("src/lib.rs", "mod a;\nmod b;\n"),
            ("src/a.rs", "use crate::b::B;\npub struct A(B);\n"),
            (
                "src/b.rs",
                "// crate::a::A\n/// [`crate::a::A`]\npub struct B;\nconst S: &str = \"crate::a::A\";\n\
                 #[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n",
            ),
        ];
        assert_eq!(violations(&quiet), []);
    }

    #[test]
    fn line_limit_counts_lines_before_the_test_module() {
        let lines = |n: usize| "fn f() {}\n".repeat(n);
        let tail = format!("#[cfg(test)]\nmod tests {{\n{}}}\n", lines(500));
        let v = violations(&[
            ("src/lib.rs", "mod long;\nmod ok;\nmod tested;\n"),
            ("src/long.rs", &lines(801)),
            ("src/ok.rs", &lines(800)),
            ("src/tested.rs", &format!("{}{tail}", lines(790))),
            ("tests/big.rs", &lines(2000)),
        ]);
        assert_eq!(
            v,
            [Violation::TooLong {
                path: "crates/demo/src/long.rs".into(),
                lines: 801
            }]
        );
        assert_eq!(
            v[0].to_string(),
            "crates/demo/src/long.rs: 801 lines (tests aside), more than 800"
        );
        assert_eq!(counted_lines(&format!("{}{tail}", lines(790))), 790);
    }
}
