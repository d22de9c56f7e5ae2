//! Durable file replacement: write a temporary file, fsync it, rename it over the target,
//! fsync the directory. A crash at any point leaves either the old file or the new one,
//! never a mix.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// Writes `file_name` in `dir` atomically: `write` fills a buffered temporary file in the same
/// directory, which is flushed, fsynced and renamed over the target; then the directory is
/// fsynced so the rename itself survives a power loss. Returns the number of bytes written.
/// On error the temporary file is removed and the target is untouched.
pub fn write_atomically(
    dir: &Path,
    file_name: &str,
    write: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> io::Result<u64> {
    let temp = temp_path(dir, file_name);
    let result = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        write(&mut writer)?;
        writer.flush()?;
        let file = writer.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        let len = file.metadata()?.len();
        drop(file);
        fs::rename(&temp, dir.join(file_name))?;
        sync_dir(dir)?;
        Ok(len)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    }
    result
}

/// Fsyncs a directory so that creations, renames and removals in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// The temporary name used while `file_name` is being written (Redis uses `temp-<pid>.rdb`).
pub fn temp_path(dir: &Path, file_name: &str) -> PathBuf {
    dir.join(format!("temp-{}-{file_name}", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"old").unwrap();
        let len = write_atomically(dir.path(), "f", |w| w.write_all(b"new contents")).unwrap();
        assert_eq!(len, 12);
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"old").unwrap();
        let err = write_atomically(dir.path(), "f", |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
