//! A save that fails mid-write leaves the old file whole and no temporary.
//!
//! The failure is a real one: the process's file-size limit (`RLIMIT_FSIZE`)
//! is lowered below the new contents' size, so writing the temporary fails
//! with `EFBIG` (permissions would not stop root). The limit is process-wide,
//! so this test has a binary of its own, with this one test in it.

#![cfg(unix)]

use residual_nn::weights::atomic_write;

/// Sets the soft file-size limit; returns the previous one.
fn set_file_size_limit(limit: libc::rlim_t) -> libc::rlimit {
    let mut old = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write the structs passed by
    // reference, which live for the duration of each call.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_FSIZE, &mut old), 0);
        let new = libc::rlimit {
            rlim_cur: limit,
            rlim_max: old.rlim_max,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &new), 0);
    }
    old
}

#[test]
fn atomic_write_that_fails_keeps_the_old_file_and_leaves_no_temporary() {
    let scratch = tempfile::Builder::new()
        .prefix("residual-nn-atomic-failure-")
        .tempdir()
        .unwrap();
    let dir = scratch.path();
    let path = dir.join("model.safetensors");
    let old = b"the old weights".to_vec();
    atomic_write(&path, &old).unwrap();
    let new: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();

    // Writing past the limit raises SIGXFSZ, which would kill the process:
    // ignored, the write fails with EFBIG instead.
    // SAFETY: replaces the disposition of one signal, with no handler code.
    let previous_handler = unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    assert_ne!(previous_handler, libc::SIG_ERR);
    let limit = (new.len() / 2) as libc::rlim_t;
    let saved = set_file_size_limit(limit);
    let result = atomic_write(&path, &new);
    // Restore at once: nothing else of this process should meet the limit.
    // SAFETY: as above, with the values read before.
    unsafe {
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &saved), 0);
        libc::signal(libc::SIGXFSZ, previous_handler);
    }

    let err = result
        .expect_err("a write past the file-size limit must fail")
        .to_string();
    assert!(err.contains("model.safetensors"), "names the path: {err}");
    let on_disk = std::fs::read(&path).unwrap();
    assert!(
        on_disk == old,
        "the old contents stay, whole: {} bytes on disk, {} before",
        on_disk.len(),
        old.len()
    );
    let left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["model.safetensors"], "no temporary is left behind");

    // With the limit restored, the same save succeeds.
    atomic_write(&path, &new).unwrap();
    assert!(std::fs::read(&path).unwrap() == new);
}
