//! `residual train --replicas N`: one data-parallel run of N replicas that
//! are threads of the process, with the semantics of N MPI processes.

mod common;

use common::{epoch_records, events_files, stderr, step_record_count, Tiny};

#[test]
fn replicas_train_one_run_that_resumes_on_another_count() {
    let tiny = Tiny::new();
    let o = tiny.train("run", &["--epochs", "2", "--replicas", "2"]);
    let e = stderr(&o);
    assert!(o.status.success(), "{e}");
    assert!(
        e.contains("2 replicas (threads of this process), 2 images each a step"),
        "{e}"
    );
    let run = tiny.path("run");
    assert_eq!(events_files(&run), 1, "one writer");
    assert_eq!(epoch_records(&run), vec![1, 2]);
    assert_eq!(
        step_record_count(&run),
        2 * 32 / 4,
        "a record per global step"
    );
    // Extended on 4 replicas, then on one.
    let o = tiny.resume("run", &["--epochs", "3", "--replicas", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = tiny.resume("run", &["--epochs", "4"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(epoch_records(&run), vec![1, 2, 3, 4]);
    assert_eq!(step_record_count(&run), 4 * 32 / 4);
}

#[test]
fn a_batch_the_replicas_do_not_divide_is_refused() {
    let tiny = Tiny::new();
    let o = tiny.train("run", &["--epochs", "1", "--replicas", "3"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("the global batch (4) must be a multiple of the number of ranks (3 processes or replicas)"),
        "{e}"
    );
    let o = tiny.train("run", &["--epochs", "1", "--replicas", "0"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("must be at least 1"), "{}", stderr(&o));
}
