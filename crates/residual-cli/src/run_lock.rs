//! One run folder, one writer: `residual train` holds an advisory lock on
//! `DIR/.lock` while it runs. The kernel releases it when the process ends,
//! however it ends, so a killed run never leaves a folder locked.

use residual_tensor::Error;
use std::fs::{File, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The lock file's name inside a run folder.
pub const LOCK_FILE: &str = ".lock";

/// The held lock of a run folder; dropping it (or the process ending)
/// releases it.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn io(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Takes `dir`'s lock (creating the folder), or says which process holds it.
pub fn lock(dir: &Path) -> Result<RunLock, Error> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let path = dir.join(LOCK_FILE);
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| io(&path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            return Err(Error::arg(
                "--out",
                format!(
                    "{} is in use by another `residual train` ({}): one run folder takes one \
                     writer; wait for that run to end, or choose another --out",
                    dir.display(),
                    holder.trim()
                ),
            ));
        }
        Err(TryLockError::Error(e)) => return Err(io(&path, e)),
    }
    let stamp = format!("pid {}", std::process::id());
    let written = file
        .set_len(0)
        .and_then(|_| file.seek(SeekFrom::Start(0)))
        .and_then(|_| file.write_all(stamp.as_bytes()));
    written.map_err(|e| io(&path, e))?;
    Ok(RunLock { _file: file })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_naming_the_holder_and_freed_on_drop() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path().join("run");
        let held = lock(&dir).unwrap();
        let err = lock(&dir).unwrap_err().to_string();
        assert!(
            err.contains("in use") && err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(held);
        assert!(lock(&dir).is_ok());
    }
}
