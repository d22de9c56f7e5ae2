//! The file-system seam of persistence. Every call that makes data durable or visible (create,
//! write, fsync, truncate, rename, directory fsync, remove) goes through a [`Disk`], so that a
//! test can make any one of them fail, write short or stall, deterministically, and can ask
//! what a power loss at that moment would leave behind ([`FaultyDisk::crash_image`]). This is
//! how FoundationDB and TigerBeetle test their storage: the production code runs unchanged on
//! a simulated disk that keeps track of what is durable.
//!
//! Reading files back (start-up, `check-aof`) uses `std::fs` directly: a failing read already
//! stops start-up with an error, and there is no durability to get wrong.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// What persistence needs from a file system.
pub trait Disk: Send + Sync {
    /// Creates `path` for writing, truncating a file already there.
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Opens the existing file `path` for appending.
    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>>;
    /// Renames `from` to `to`, replacing `to` if it exists (durable once the directory is
    /// synced).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Fsyncs directory `dir`, making creations, renames and removals in it durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Removes the file `path`.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
}

/// A file opened through a [`Disk`]. `write` may write fewer bytes than asked (a short
/// write); `write_all` retries the rest and fails if a later call fails.
pub trait DiskFile: Write + Send {
    /// Makes the file's data durable (fdatasync).
    fn sync_data(&mut self) -> io::Result<()>;
    /// Makes the file's data and metadata durable (fsync).
    fn sync_all(&mut self) -> io::Result<()>;
    /// Cuts the file to `len` bytes: how a failed append is taken back before it is retried.
    fn truncate(&mut self, len: u64) -> io::Result<()>;
}

/// The operating system's file system: what the server uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct OsDisk;

/// A real file.
struct OsFile(File);

impl Write for OsFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl DiskFile for OsFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.0.sync_data()
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.0.set_len(len)?;
        self.0.seek(SeekFrom::Start(len)).map(drop)
    }
}

impl Disk for OsDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(OsFile(file)))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        Ok(Box::new(OsFile(
            OpenOptions::new().append(true).open(path)?,
        )))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }
}

/// The calls a [`FaultyDisk`] counts and can fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DiskOp {
    /// [`Disk::create`] and [`Disk::open_append`].
    Open,
    /// One `write` call on a file.
    Write,
    /// [`DiskFile::sync_data`] or [`DiskFile::sync_all`].
    Sync,
    /// [`DiskFile::truncate`].
    Truncate,
    /// [`Disk::rename`].
    Rename,
    /// [`Disk::sync_dir`].
    SyncDir,
    /// [`Disk::remove_file`].
    Remove,
}

impl DiskOp {
    /// Every kind of call, for tests that try a fault at each.
    pub const ALL: [DiskOp; 7] = [
        DiskOp::Open,
        DiskOp::Write,
        DiskOp::Sync,
        DiskOp::Truncate,
        DiskOp::Rename,
        DiskOp::SyncDir,
        DiskOp::Remove,
    ];
}

/// What an injected fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The call fails with this OS error number (`libc::ENOSPC`, `libc::EIO`, ...). A failed
    /// sync also loses the file's unsynced data for good, as Linux may drop dirty pages it
    /// could not write and mark them clean: a later successful sync does not bring them back.
    Fail(i32),
    /// A write writes half its bytes (at least one) and reports that; the rule's further
    /// calls fail with `ENOSPC`, as when a disk fills up. Other calls: like `Fail(ENOSPC)`.
    Short,
    /// The call sleeps this long, then goes through.
    Stall(Duration),
}

/// Injects `fault` into calls number `first .. first + count` (counting from 1) of kind `op`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultRule {
    /// The kind of call.
    pub op: DiskOp,
    /// The first call (1-based, per kind, since the disk was made) that gets the fault.
    pub first: u64,
    /// How many consecutive calls get it (`u64::MAX`: until [`FaultyDisk::clear`]).
    pub count: u64,
    /// What happens to them.
    pub fault: Fault,
}

/// Durability of one file, as a power loss would see it.
#[derive(Debug, Default)]
struct FileModel {
    /// Bytes in the file now.
    len: u64,
    /// Bytes known to be on stable storage.
    durable_len: u64,
    /// Ranges whose data a failed sync may have dropped: garbage after a power loss, whatever
    /// later syncs report.
    lost: Vec<(u64, u64)>,
}

type SharedModel = Arc<Mutex<FileModel>>;

/// A directory change not yet made durable by a directory sync.
#[derive(Debug)]
enum DirChange {
    /// A file was created at this path.
    Created(PathBuf),
    /// `from` was renamed to `to`; `replaced` held the old content of `to`, if any.
    Renamed {
        from: PathBuf,
        to: PathBuf,
        replaced: Option<Vec<u8>>,
    },
    /// The file at this path, with this content, was removed.
    Removed(PathBuf, Vec<u8>),
}

impl DirChange {
    fn dir(&self) -> Option<&Path> {
        match self {
            DirChange::Created(path) | DirChange::Removed(path, _) => path.parent(),
            DirChange::Renamed { to, .. } => to.parent(),
        }
    }
}

#[derive(Default)]
struct State {
    calls: HashMap<DiskOp, u64>,
    rules: Vec<FaultRule>,
    injected: u64,
    files: HashMap<PathBuf, SharedModel>,
    pending: Vec<DirChange>,
}

/// A real directory tree with faults injected on command and a model of what is durable: the
/// simulated disk of the fault-injection tests. Files are really written (so the server under
/// test reads back what it wrote); [`FaultyDisk::crash_image`] copies the tree as a power loss
/// at this instant would leave it.
#[derive(Default, Clone)]
pub struct FaultyDisk {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for FaultyDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultyDisk")
            .field("injected", &self.injected())
            .finish()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultyDisk {
    /// A disk with no faults planned.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a fault rule.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.state).rules.push(rule);
    }

    /// Removes every fault rule: the disk works again.
    pub fn clear(&self) {
        lock(&self.state).rules.clear();
    }

    /// Number of calls of kind `op` so far.
    pub fn calls(&self, op: DiskOp) -> u64 {
        lock(&self.state).calls.get(&op).copied().unwrap_or(0)
    }

    /// Number of faults injected so far.
    pub fn injected(&self) -> u64 {
        lock(&self.state).injected
    }

    /// Counts a call of kind `op` and returns the fault to inject into it, if any.
    fn enter(&self, op: DiskOp) -> Option<(Fault, bool)> {
        let mut state = lock(&self.state);
        let n = {
            let calls = state.calls.entry(op).or_insert(0);
            *calls += 1;
            *calls
        };
        let rule = state
            .rules
            .iter()
            .find(|rule| rule.op == op && n >= rule.first && n - rule.first < rule.count)
            .copied()?;
        state.injected += 1;
        Some((rule.fault, n == rule.first))
    }

    /// Applies a fault that is not a stall: the error to return.
    fn fail(fault: Fault) -> io::Error {
        match fault {
            Fault::Fail(errno) => io::Error::from_raw_os_error(errno),
            Fault::Short | Fault::Stall(_) => io::Error::from_raw_os_error(libc::ENOSPC),
        }
    }

    /// Counts a call and fails it if a rule says so (stalls sleep and pass).
    fn check(&self, op: DiskOp) -> io::Result<()> {
        match self.enter(op) {
            None => Ok(()),
            Some((Fault::Stall(pause), _)) => {
                std::thread::sleep(pause);
                Ok(())
            }
            Some((fault, _)) => Err(Self::fail(fault)),
        }
    }

    fn track(&self, path: &Path, len: u64) -> SharedModel {
        let model = Arc::new(Mutex::new(FileModel {
            len,
            durable_len: len,
            lost: Vec::new(),
        }));
        let mut state = lock(&self.state);
        state.files.insert(path.to_owned(), Arc::clone(&model));
        model
    }

    /// Copies the tree under `root` to `to` as a power loss now would leave it: each file
    /// the disk wrote keeps only its synced bytes (with ranges a failed sync dropped turned to
    /// zeros), and directory changes not followed by a directory sync are undone. Files the
    /// disk never touched are copied as they are.
    pub fn crash_image(&self, root: &Path, to: &Path) -> io::Result<()> {
        let state = lock(&self.state);
        copy_tree(root, to, &|path, bytes| {
            let Some(model) = state.files.get(path) else {
                return bytes;
            };
            let model = lock(model);
            let mut bytes = bytes;
            bytes.truncate(usize::try_from(model.durable_len).unwrap_or(usize::MAX));
            for &(start, end) in &model.lost {
                let start = usize::try_from(start)
                    .unwrap_or(usize::MAX)
                    .min(bytes.len());
                let end = usize::try_from(end).unwrap_or(usize::MAX).min(bytes.len());
                bytes[start..end].fill(0);
            }
            bytes
        })?;
        let image = |path: &Path| -> Option<PathBuf> {
            path.strip_prefix(root).ok().map(|rest| to.join(rest))
        };
        for change in state.pending.iter().rev() {
            match change {
                DirChange::Created(path) => {
                    if let Some(path) = image(path) {
                        let _ = fs::remove_file(path);
                    }
                }
                DirChange::Renamed { from, to, replaced } => {
                    if let (Some(from), Some(to)) = (image(from), image(to)) {
                        if to.exists() {
                            fs::rename(&to, &from)?;
                        }
                        if let Some(old) = replaced {
                            fs::write(&to, old)?;
                        }
                    }
                }
                DirChange::Removed(path, bytes) => {
                    if let Some(path) = image(path) {
                        fs::write(path, bytes)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Copies every file under `from` to the same place under `to`, through `filter`.
fn copy_tree(from: &Path, to: &Path, filter: &dyn Fn(&Path, Vec<u8>) -> Vec<u8>) -> io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&path, &target, filter)?;
        } else {
            let bytes = fs::read(&path)?;
            fs::write(&target, filter(&path, bytes))?;
        }
    }
    Ok(())
}

/// A file of a [`FaultyDisk`].
struct FaultyFile {
    file: File,
    disk: FaultyDisk,
    model: SharedModel,
}

impl Write for FaultyFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let wanted = match self.disk.enter(DiskOp::Write) {
            None => buf.len(),
            Some((Fault::Stall(pause), _)) => {
                std::thread::sleep(pause);
                buf.len()
            }
            Some((Fault::Short, true)) => (buf.len() / 2).max(1),
            Some((fault, _)) => return Err(FaultyDisk::fail(fault)),
        };
        let written = self.file.write(&buf[..wanted])?;
        lock(&self.model).len += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl FaultyFile {
    fn sync(&mut self, all: bool) -> io::Result<()> {
        let result = self.disk.check(DiskOp::Sync).and_then(|()| {
            if all {
                self.file.sync_all()
            } else {
                self.file.sync_data()
            }
        });
        let mut model = lock(&self.model);
        match result {
            Ok(()) => model.durable_len = model.len,
            Err(_) => {
                // The unsynced bytes may be gone for good (pages dropped and marked clean).
                let (start, end) = (model.durable_len, model.len);
                if end > start {
                    model.lost.push((start, end));
                }
            }
        }
        result
    }
}

impl DiskFile for FaultyFile {
    fn sync_data(&mut self) -> io::Result<()> {
        self.sync(false)
    }

    fn sync_all(&mut self) -> io::Result<()> {
        self.sync(true)
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.disk.check(DiskOp::Truncate)?;
        self.file.set_len(len)?;
        self.file.seek(SeekFrom::Start(len))?;
        let mut model = lock(&self.model);
        model.len = len;
        model.durable_len = model.durable_len.min(len);
        Ok(())
    }
}

impl Disk for FaultyDisk {
    fn create(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        self.check(DiskOp::Open)?;
        let existed = path.exists();
        let file = OsDisk::create_file(path)?;
        let model = self.track(path, 0);
        if !existed {
            lock(&self.state)
                .pending
                .push(DirChange::Created(path.to_owned()));
        }
        Ok(Box::new(FaultyFile {
            file,
            disk: self.clone(),
            model,
        }))
    }

    fn open_append(&self, path: &Path) -> io::Result<Box<dyn DiskFile>> {
        self.check(DiskOp::Open)?;
        let file = OpenOptions::new().append(true).open(path)?;
        let tracked = lock(&self.state).files.get(path).cloned();
        let model = match tracked {
            Some(model) => model,
            None => self.track(path, file.metadata()?.len()),
        };
        Ok(Box::new(FaultyFile {
            file,
            disk: self.clone(),
            model,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.check(DiskOp::Rename)?;
        let replaced = fs::read(to).ok();
        fs::rename(from, to)?;
        let mut state = lock(&self.state);
        if let Some(model) = state.files.remove(from) {
            state.files.insert(to.to_owned(), model);
        } else {
            state.files.remove(to);
        }
        state.pending.push(DirChange::Renamed {
            from: from.to_owned(),
            to: to.to_owned(),
            replaced,
        });
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.check(DiskOp::SyncDir)?;
        File::open(dir)?.sync_all()?;
        lock(&self.state)
            .pending
            .retain(|change| change.dir() != Some(dir));
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.check(DiskOp::Remove)?;
        let bytes = fs::read(path)?;
        fs::remove_file(path)?;
        let mut state = lock(&self.state);
        state.files.remove(path);
        state
            .pending
            .push(DirChange::Removed(path.to_owned(), bytes));
        Ok(())
    }
}

impl OsDisk {
    fn create_file(path: &Path) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_file(disk: &dyn Disk, path: &Path, bytes: &[u8]) -> io::Result<Box<dyn DiskFile>> {
        let mut file = disk.create(path)?;
        file.write_all(bytes)?;
        Ok(file)
    }

    #[test]
    fn the_nth_call_of_a_kind_fails_and_others_pass() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        disk.inject(FaultRule {
            op: DiskOp::Sync,
            first: 2,
            count: 1,
            fault: Fault::Fail(libc::EIO),
        });
        let mut file = write_file(&disk, &dir.path().join("a"), b"one").unwrap();
        assert!(file.sync_data().is_ok());
        let err = file.sync_data().unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EIO));
        assert!(file.sync_data().is_ok());
        assert_eq!(disk.calls(DiskOp::Sync), 3);
        assert_eq!(disk.injected(), 1);
    }

    #[test]
    fn a_short_write_then_enospc_fails_write_all_after_part_of_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        disk.inject(FaultRule {
            op: DiskOp::Write,
            first: 1,
            count: 2,
            fault: Fault::Short,
        });
        let path = dir.path().join("a");
        let mut file = disk.create(&path).unwrap();
        let err = file.write_all(b"abcdefgh").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(fs::read(&path).unwrap(), b"abcd");
        file.truncate(0).unwrap();
        file.write_all(b"abcdefgh").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"abcdefgh");
    }

    #[test]
    fn a_crash_keeps_synced_bytes_only() {
        let root = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let path = root.path().join("log");
        let mut file = write_file(&disk, &path, b"synced ").unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(root.path()).unwrap();
        file.write_all(b"pending").unwrap();
        disk.crash_image(root.path(), image.path()).unwrap();
        assert_eq!(fs::read(image.path().join("log")).unwrap(), b"synced ");
    }

    #[test]
    fn data_a_failed_sync_covered_stays_lost_after_a_later_successful_sync() {
        let root = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        disk.inject(FaultRule {
            op: DiskOp::Sync,
            first: 2,
            count: 1,
            fault: Fault::Fail(libc::EIO),
        });
        let path = root.path().join("log");
        let mut file = write_file(&disk, &path, b"aa").unwrap();
        file.sync_data().unwrap();
        disk.sync_dir(root.path()).unwrap();
        file.write_all(b"bb").unwrap();
        assert!(file.sync_data().is_err());
        file.write_all(b"cc").unwrap();
        file.sync_data().unwrap();
        disk.crash_image(root.path(), image.path()).unwrap();
        assert_eq!(fs::read(image.path().join("log")).unwrap(), b"aa\0\0cc");
    }

    #[test]
    fn directory_changes_need_a_directory_sync() {
        let root = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let target = root.path().join("dump");
        let mut old = write_file(&disk, &target, b"old").unwrap();
        old.sync_all().unwrap();
        disk.sync_dir(root.path()).unwrap();
        let temp = root.path().join("temp-dump");
        let mut new = write_file(&disk, &temp, b"new").unwrap();
        new.sync_all().unwrap();
        disk.rename(&temp, &target).unwrap();

        let before_sync = tempfile::tempdir().unwrap();
        disk.crash_image(root.path(), before_sync.path()).unwrap();
        assert_eq!(fs::read(before_sync.path().join("dump")).unwrap(), b"old");
        // The temporary file's creation was not made durable either.
        assert!(!before_sync.path().join("temp-dump").exists());

        disk.sync_dir(root.path()).unwrap();
        let after_sync = tempfile::tempdir().unwrap();
        disk.crash_image(root.path(), after_sync.path()).unwrap();
        assert_eq!(fs::read(after_sync.path().join("dump")).unwrap(), b"new");
        assert!(!after_sync.path().join("temp-dump").exists());
    }

    #[test]
    fn an_unsynced_creation_is_gone_after_a_crash() {
        let root = tempfile::tempdir().unwrap();
        let image = tempfile::tempdir().unwrap();
        let disk = FaultyDisk::new();
        let mut file = write_file(&disk, &root.path().join("new"), b"x").unwrap();
        file.sync_all().unwrap();
        disk.crash_image(root.path(), image.path()).unwrap();
        assert!(!image.path().join("new").exists());
    }
}
