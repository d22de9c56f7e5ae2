//! The registry of connected clients behind CLIENT LIST / CLIENT INFO.
//!
//! The registry's lock is taken on connect, disconnect and CLIENT LIST only. What changes per
//! command (last command, idle time, database) lives in per-client atomics, so the request
//! path never touches a shared lock.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;

use bytes::Bytes;

use crate::sync::{Arc, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering};
use protocol::catalogue::{self, CommandSpec};

/// What CLIENT SETNAME / SETINFO / HELLO set: changed rarely, read by CLIENT LIST.
#[derive(Default, Clone)]
struct Names {
    name: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
}

/// One connected client as other connections see it.
pub struct ClientInfo {
    /// Unique, increasing connection id (CLIENT ID).
    pub id: u64,
    addr: SocketAddr,
    local_addr: SocketAddr,
    fd: i32,
    connected_at_ms: u64,
    last_command_at_ms: AtomicU64,
    /// Address of the last command's entry in the static command table (0: none yet); an
    /// address fits an atomic, and CLIENT LIST maps it back by searching the table.
    last_command: AtomicUsize,
    db: AtomicUsize,
    resp: AtomicU32,
    names: Mutex<Names>,
}

/// All connected clients.
pub struct Registry {
    clients: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
    next_id: AtomicU64,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            clients: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Registry {
    /// Registers a new connection; the returned handle unregisters it when dropped.
    /// (An associated function rather than a method: loom's `Arc` cannot be a receiver.)
    pub fn register(
        registry: &Arc<Self>,
        addr: SocketAddr,
        local_addr: SocketAddr,
        fd: i32,
        now_ms: u64,
    ) -> ClientHandle {
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo {
            id,
            addr,
            local_addr,
            fd,
            connected_at_ms: now_ms,
            last_command_at_ms: AtomicU64::new(now_ms),
            last_command: AtomicUsize::new(0),
            db: AtomicUsize::new(0),
            resp: AtomicU32::new(2),
            names: Mutex::new(Names::default()),
        });
        registry.clients.lock().insert(id, Arc::clone(&info));
        ClientHandle {
            info,
            registry: Arc::clone(registry),
        }
    }

    /// Number of connected clients.
    pub fn len(&self) -> usize {
        self.clients.lock().len()
    }

    /// True if no client is connected.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// CLIENT LIST lines for the clients accepted by `filter`, in id order.
    pub fn list(&self, now_ms: u64, filter: impl Fn(&ClientInfo) -> bool) -> String {
        let clients: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        let mut text = String::new();
        for client in clients.iter().filter(|c| filter(c)) {
            self.describe(client, now_ms, &mut text);
            text.push('\n');
        }
        text
    }

    /// The CLIENT LIST line of one client (no trailing newline).
    pub fn describe(&self, client: &ClientInfo, now_ms: u64, out: &mut String) {
        let names = client.names.lock().clone();
        let command =
            name_at_address(client.last_command.load(Ordering::Relaxed)).unwrap_or("NULL");
        let show = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let age = now_ms.saturating_sub(client.connected_at_ms) / 1000;
        let idle = now_ms.saturating_sub(client.last_command_at_ms.load(Ordering::Relaxed)) / 1000;
        let _ = write!(
            out,
            "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags=N db={} \
             sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 \
             rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={command} user=default \
             redir=-1 resp={} lib-name={} lib-ver={}",
            client.id,
            client.addr,
            client.local_addr,
            client.fd,
            show(&names.name),
            client.db.load(Ordering::Relaxed),
            client.resp.load(Ordering::Relaxed),
            show(&names.lib_name),
            show(&names.lib_ver),
        );
    }
}

/// A connection's own registration: updates its entry and removes it on drop.
pub struct ClientHandle {
    info: Arc<ClientInfo>,
    registry: Arc<Registry>,
}

impl ClientHandle {
    /// This client's shared entry.
    pub fn info(&self) -> &ClientInfo {
        &self.info
    }

    /// The registry this client is in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Records the command being run (its catalogue row) and the time (for `cmd=` and
    /// `idle=`).
    #[inline]
    pub fn note_command(&self, command: &'static CommandSpec, now_ms: u64) {
        let info = &self.info;
        info.last_command
            .store(address_of(command), Ordering::Relaxed);
        info.last_command_at_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Records the selected database.
    pub fn set_db(&self, db: usize) {
        self.info.db.store(db, Ordering::Relaxed);
    }

    /// Records the protocol version.
    pub fn set_resp(&self, version: u32) {
        self.info.resp.store(version, Ordering::Relaxed);
    }

    /// The connection name, if set.
    pub fn name(&self) -> Option<Bytes> {
        self.info.names.lock().name.clone()
    }

    /// Sets or clears (`None`) the connection name.
    pub fn set_name(&self, name: Option<Bytes>) {
        self.info.names.lock().name = name;
    }

    /// Sets the library name or version reported by CLIENT SETINFO.
    pub fn set_lib(&self, name: Option<Bytes>, version: Option<Bytes>) {
        let mut names = self.info.names.lock();
        if name.is_some() {
            names.lib_name = name;
        }
        if version.is_some() {
            names.lib_ver = version;
        }
    }
}

impl Drop for ClientHandle {
    fn drop(&mut self) {
        self.registry.clients.lock().remove(&self.info.id);
    }
}

impl ClientInfo {
    /// Kind of client for CLIENT LIST TYPE (every client is a normal one for now).
    pub fn kind(&self) -> &'static str {
        "normal"
    }
}

/// The address that identifies a catalogue row in [`ClientHandle::note_command`]: one store
/// of a word per command, resolved to a name only when CLIENT LIST asks.
#[inline]
fn address_of(command: &'static CommandSpec) -> usize {
    std::ptr::from_ref(command) as usize
}

/// The name of the catalogue row at `address` (see [`address_of`]), for CLIENT LIST's `cmd=`.
fn name_at_address(address: usize) -> Option<&'static str> {
    catalogue::all()
        .find(|&command| address_of(command) == address)
        .map(|command| command.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_commands_and_subcommands() {
        for command in catalogue::all() {
            assert_eq!(name_at_address(address_of(command)), Some(command.name));
        }
        assert_eq!(name_at_address(0), None);
    }
}
