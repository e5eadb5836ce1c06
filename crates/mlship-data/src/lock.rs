//! The repository lock DVC takes for every command that reads or changes the workspace: an
//! exclusive `flock` on `.dvc/tmp/lock` holding the owner's pid (zc.lockfile's format), so `dvc`
//! and mlship never work on one repository at the same time. The kernel drops the lock when its
//! holder exits, so a crash leaves none behind.

use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result, io};

/// Held while a command works; released on drop.
#[derive(Debug)]
pub struct RepoLock {
    _file: std::fs::File,
}

/// As DVC: six more tries, half a second apart, before giving up.
const TRIES: u32 = 7;
const PAUSE: Duration = Duration::from_millis(500);

impl RepoLock {
    /// Takes the lock in `dvc_dir` (`.dvc`), waiting up to three seconds for another holder.
    pub fn take(dvc_dir: &Path) -> Result<RepoLock> {
        let tmp = dvc_dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let path = tmp.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io(&path))?;
        let mut attempt = 1;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if attempt < TRIES => {
                    attempt += 1;
                    std::thread::sleep(PAUSE);
                }
                Err(std::fs::TryLockError::WouldBlock) => return Err(held(&path, &mut file)),
                Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
            }
        }
        // zc.lockfile's content: a space, the pid, a newline.
        let pid = format!(" {}\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(pid.as_bytes()));
        written.map_err(io(&path))?;
        Ok(RepoLock { _file: file })
    }
}

fn held(path: &Path, file: &mut std::fs::File) -> Error {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let pid = text.trim();
    Error::Locked(
        PathBuf::from(path),
        if pid.is_empty() {
            "unknown".into()
        } else {
            pid.into()
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_is_refused_naming_the_first() {
        let d = tempfile::tempdir().unwrap();
        let first = RepoLock::take(d.path()).unwrap();
        let text = std::fs::read_to_string(d.path().join("tmp/lock")).unwrap();
        assert_eq!(text, format!(" {}\n", std::process::id()));
        let t = std::time::Instant::now();
        let e = RepoLock::take(d.path()).unwrap_err();
        assert!(t.elapsed() >= Duration::from_secs(3), "{:?}", t.elapsed());
        let pid = std::process::id().to_string();
        assert!(matches!(&e, Error::Locked(_, p) if *p == pid), "{e}");
        drop(first);
        RepoLock::take(d.path()).unwrap();
    }
}
