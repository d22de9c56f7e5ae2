//! Durable file replacement: write a temporary file, fsync it, rename it over the target,
//! fsync the directory. A crash at any point leaves either the old file or the new one,
//! never a mix.

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::disk::{Disk, DiskFile};

/// Writes `file_name` in `dir` atomically: `write` fills a buffered temporary file in the same
/// directory, which is flushed, fsynced and renamed over the target; then the directory is
/// fsynced so the rename itself survives a power loss. Every step's error is reported (a
/// failed directory fsync included). Returns the number of bytes written. On error the
/// temporary file is removed and the target is untouched.
pub fn write_atomically(
    disk: &dyn Disk,
    dir: &Path,
    file_name: &str,
    write: impl FnOnce(&mut BufWriter<Box<dyn DiskFile>>) -> io::Result<()>,
) -> io::Result<u64> {
    let temp = temp_path(dir, file_name);
    let result = (|| {
        let file = disk.create(&temp)?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        write(&mut writer)?;
        writer.flush()?;
        let mut file = writer.into_inner().map_err(|err| err.into_error())?;
        file.sync_all()?;
        drop(file);
        let len = fs::metadata(&temp)?.len();
        disk.rename(&temp, &dir.join(file_name))?;
        disk.sync_dir(dir)?;
        Ok(len)
    })();
    if result.is_err() && temp.exists() {
        let _ = disk.remove_file(&temp);
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

/// Removes temporary files that a killed process left in `dir` (`temp-<pid>-<name>` of another
/// process id), so crashes during snapshots do not pile up dead copies of the data. Returns how
/// many were removed. A missing directory is not an error.
pub fn remove_stale_temp_files(dir: &Path) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(err) => return Err(err),
    };
    let own = format!("temp-{}-", std::process::id());
    let mut removed = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        if is_temp_name(name) && !name.starts_with(&own) && entry.file_type()?.is_file() {
            fs::remove_file(entry.path())?;
            removed += 1;
        }
    }
    if removed > 0 {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// True for names [`temp_path`] produces: `temp-<digits>-<rest>`.
fn is_temp_name(name: &str) -> bool {
    name.strip_prefix("temp-")
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, rest)| {
            !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()) && !rest.is_empty()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::disk::OsDisk;

    #[test]
    fn replaces_the_target_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"old").unwrap();
        let len =
            write_atomically(&OsDisk, dir.path(), "f", |w| w.write_all(b"new contents")).unwrap();
        assert_eq!(len, 12);
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"new contents");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_failed_write_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"old").unwrap();
        let err = write_atomically(&OsDisk, dir.path(), "f", |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(fs::read(dir.path().join("f")).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temporaries_of_other_processes_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "temp-1-dump.kvs",
            "temp-99-appendonly.aof.manifest",
            "dump.kvs",
            "temp-x-y",
            "temp-12-",
        ] {
            fs::write(dir.path().join(name), b"x").unwrap();
        }
        fs::write(temp_path(dir.path(), "mine"), b"x").unwrap();
        assert_eq!(remove_stale_temp_files(dir.path()).unwrap(), 2);
        let mut left: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mine = format!("temp-{}-mine", std::process::id());
        let mut expected = vec![
            "dump.kvs".to_owned(),
            "temp-12-".to_owned(),
            "temp-x-y".to_owned(),
            mine,
        ];
        expected.sort();
        assert_eq!(left, expected);
        assert_eq!(
            remove_stale_temp_files(&dir.path().join("missing")).unwrap(),
            0
        );
    }
}
