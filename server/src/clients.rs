//! The registry of connected clients behind CLIENT LIST / CLIENT INFO.
//!
//! The registry's lock is taken on connect, disconnect and CLIENT LIST only. What changes per
//! command (last command, idle time, database) lives in per-client atomics, so the request
//! path never touches a shared lock.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, SocketAddrV4};

use bytes::Bytes;

use crate::admission::{Admission, Ticket};
use crate::pubsub::Mailbox;
use crate::store::waiters::Waiter;
use crate::sync::{
    Arc, AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Mutex, Ordering,
};
use crate::tracking::Settings;
use protocol::catalogue::{self, CommandSpec};

/// What CLIENT SETNAME / SETINFO / HELLO set: changed rarely, read by CLIENT LIST.
#[derive(Default, Clone)]
struct Names {
    name: Option<Bytes>,
    /// The ACL user the client is logged in as; `None` for `default`.
    user: Option<Bytes>,
    lib_name: Option<Bytes>,
    lib_ver: Option<Bytes>,
}

/// One connected client as other connections see it.
///
/// Every connection has one, idle or not, so it is kept small (152 bytes with its reference
/// counts, a 160-byte allocation): addresses compact, counters no wider than their values
/// need, what is rare (names, a blocked command) behind a pointer.
pub struct ClientInfo {
    /// Unique, increasing connection id (CLIENT ID).
    pub id: u64,
    addresses: Addresses,
    fd: i32,
    connected_at_ms: u64,
    last_command_at_ms: AtomicU64,
    /// Address of the last command's entry in the static command table (0: none yet); an
    /// address fits an atomic, and CLIENT LIST maps it back by searching the table.
    last_command: AtomicUsize,
    db: AtomicU32,
    /// The protocol version, 2 or 3.
    resp: AtomicU8,
    /// The connection holds a place in the server's admission counts (`maxclients`,
    /// per-address bound), given back when its registration is dropped.
    counted: bool,
    /// Boxed, and only once one is set: most clients never set any, and inline the names
    /// were a third of every connection's entry.
    names: Mutex<Option<Box<Names>>>,
    /// The command this client is blocked in (BLPOP...), for CLIENT UNBLOCK and the `b` flag.
    blocked: Mutex<Option<Arc<Waiter>>>,
    /// Subscribed channels, patterns and shard channels (CLIENT LIST `sub`, `psub`, `ssub`).
    subscriptions: [AtomicU32; 3],
    /// Where Pub/Sub messages and tracking invalidations wait for this connection: other
    /// connections append, the connection moves them into its output.
    pub mailbox: Arc<Mailbox>,
    /// Set when the connection closes (a tracking redirect to it is then broken).
    gone: AtomicBool,
    /// CLIENT TRACKING as CLIENT LIST shows it: [`TRACKING_ON`], [`TRACKING_BCAST`],
    /// [`TRACKING_BROKEN`] bits.
    tracking: AtomicU8,
    /// The tracking redirect's client id (CLIENT LIST `redir`; -1 while tracking is off).
    tracking_redirect: AtomicI64,
    /// The registry it is in (here rather than in [`ClientHandle`], which is part of every
    /// connection's task: 8 bytes less there, none more here after rounding).
    registry: Arc<Registry>,
}

/// A client's address and the server's end of its connection. Both IPv4 (the common case,
/// and the default bind) are 16 bytes inline; anything else is boxed, so that every client's
/// entry does not carry two 32-byte `SocketAddr`s.
enum Addresses {
    V4 {
        peer: SocketAddrV4,
        local: SocketAddrV4,
    },
    Other(Box<(SocketAddr, SocketAddr)>),
}

impl Addresses {
    fn new(peer: SocketAddr, local: SocketAddr) -> Self {
        match (peer, local) {
            (SocketAddr::V4(peer), SocketAddr::V4(local)) => Addresses::V4 { peer, local },
            _ => Addresses::Other(Box::new((peer, local))),
        }
    }

    fn peer(&self) -> SocketAddr {
        match self {
            Addresses::V4 { peer, .. } => SocketAddr::V4(*peer),
            Addresses::Other(both) => both.0,
        }
    }

    fn local(&self) -> SocketAddr {
        match self {
            Addresses::V4 { local, .. } => SocketAddr::V4(*local),
            Addresses::Other(both) => both.1,
        }
    }
}

/// [`ClientInfo`] tracking bit: tracking is on (flag `t`).
const TRACKING_ON: u8 = 1;
/// Tracking bit: BCAST mode (flag `B`).
const TRACKING_BCAST: u8 = 2;
/// Tracking bit: the redirect target is gone (flag `R`).
const TRACKING_BROKEN: u8 = 4;

/// Clients by id. A hash map: a connect or disconnect is O(1) whatever the number of
/// clients; CLIENT LIST, which wants id order, sorts.
type ClientTable = HashMap<u64, Arc<ClientInfo>, foldhash::fast::RandomState>;

/// All connected clients.
pub struct Registry {
    clients: Mutex<ClientTable>,
    next_id: AtomicU64,
    /// Where the clients registered with an admission [`Ticket`] give their place back.
    admission: Option<std::sync::Arc<Admission>>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            clients: Mutex::new(ClientTable::default()),
            next_id: AtomicU64::new(1),
            admission: None,
        }
    }
}

impl Registry {
    /// A registry whose connections give their admission places back to `admission`.
    pub fn new(admission: std::sync::Arc<Admission>) -> Self {
        Registry {
            admission: Some(admission),
            ..Registry::default()
        }
    }

    /// Registers a new connection; the returned handle unregisters it when dropped, and then
    /// gives back the admission place `ticket` holds (none for internal clients).
    /// (An associated function rather than a method: loom's `Arc` cannot be a receiver.)
    pub fn register(
        registry: &Arc<Self>,
        addr: SocketAddr,
        local_addr: SocketAddr,
        fd: i32,
        now_ms: u64,
        ticket: Option<Ticket>,
    ) -> ClientHandle {
        // A ticket the registry cannot give back (none of its own admission, or another's)
        // is dropped here, which gives the place back at once.
        let counted = match (ticket, registry.admission.as_ref()) {
            (Some(ticket), Some(own)) => ticket.hand_over(own),
            _ => false,
        };
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        let info = Arc::new(ClientInfo {
            id,
            addresses: Addresses::new(addr, local_addr),
            fd,
            connected_at_ms: now_ms,
            last_command_at_ms: AtomicU64::new(now_ms),
            last_command: AtomicUsize::new(0),
            db: AtomicU32::new(0),
            resp: AtomicU8::new(2),
            counted,
            names: Mutex::new(None),
            blocked: Mutex::new(None),
            subscriptions: Default::default(),
            mailbox: Mailbox::new(id, protocol::Version::Resp2),
            gone: AtomicBool::new(false),
            tracking: AtomicU8::new(0),
            tracking_redirect: AtomicI64::new(-1),
            registry: Arc::clone(registry),
        });
        registry.clients.lock().insert(id, Arc::clone(&info));
        ClientHandle { info }
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
        let mut clients: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        clients.sort_unstable_by_key(|client| client.id);
        let mut text = String::new();
        for client in clients.iter().filter(|c| filter(c)) {
            self.describe(client, now_ms, &mut text);
            text.push('\n');
        }
        text
    }

    /// Rings every client's mailbox doorbell: at shutdown, the connections waiting for a
    /// request wake up, see the shutdown and end.
    pub fn ring_all(&self) {
        let clients: Vec<Arc<ClientInfo>> = self.clients.lock().values().cloned().collect();
        for client in clients {
            client.mailbox.signal.ring();
        }
    }

    /// Client `id`, if it is connected.
    pub fn client(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.clients.lock().get(&id).cloned()
    }

    /// The blocking command client `id` waits in, if it is connected and blocked.
    pub fn blocked_waiter(&self, id: u64) -> Option<Arc<Waiter>> {
        let client = self.clients.lock().get(&id).cloned()?;
        let waiter = client.blocked.lock().clone();
        waiter
    }

    /// CLIENT KILL: disconnects every client `matches` accepts, except `me` (the caller,
    /// which closes itself after its reply); returns how many matched, `me` included.
    ///
    /// A client is disconnected by shutting its socket down, which its connection sees as
    /// the peer leaving (a read of 0 bytes, also while it is blocked). This is done under
    /// the registry's lock: a connection unregisters (dropping its handle) before its socket
    /// is closed, so a descriptor found here is still that client's.
    pub fn kill(&self, me: u64, mut matches: impl FnMut(&ClientInfo) -> bool) -> usize {
        let clients = self.clients.lock();
        let mut killed = 0;
        for client in clients.values().filter(|c| matches(c)) {
            killed += 1;
            if client.id != me && client.fd >= 0 {
                shutdown_socket(client.fd);
            }
        }
        killed
    }

    /// The CLIENT LIST line of one client (no trailing newline).
    pub fn describe(&self, client: &ClientInfo, now_ms: u64, out: &mut String) {
        let names = client.names.lock().as_deref().cloned().unwrap_or_default();
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
            "id={} addr={} laddr={} fd={} name={} age={age} idle={idle} flags={} db={} \
             sub={} psub={} ssub={} multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 \
             rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={command} user={} \
             redir={} resp={} lib-name={} lib-ver={}",
            client.id,
            client.addr(),
            client.local_addr(),
            client.fd,
            show(&names.name),
            client.flags(),
            client.db.load(Ordering::Relaxed),
            client.subscriptions[0].load(Ordering::Relaxed),
            client.subscriptions[1].load(Ordering::Relaxed),
            client.subscriptions[2].load(Ordering::Relaxed),
            names
                .user
                .as_ref()
                .map_or_else(|| "default".into(), |user| String::from_utf8_lossy(user)),
            client.tracking_redirect.load(Ordering::Relaxed),
            client.resp.load(Ordering::Relaxed),
            show(&names.lib_name),
            show(&names.lib_ver),
        );
    }
}

/// A connection's own registration: updates its entry and removes it on drop.
pub struct ClientHandle {
    info: Arc<ClientInfo>,
}

impl ClientHandle {
    /// This client's shared entry.
    pub fn info(&self) -> &ClientInfo {
        &self.info
    }

    /// The registry this client is in.
    pub fn registry(&self) -> &Registry {
        &self.info.registry
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

    /// This client's shared entry, to keep beyond a borrow of the handle.
    pub fn shared_info(&self) -> Arc<ClientInfo> {
        Arc::clone(&self.info)
    }

    /// Records the blocking command the client waits in (`None`: it no longer waits).
    pub fn set_blocked(&self, waiter: Option<Arc<Waiter>>) {
        self.info.set_blocked(waiter);
    }

    /// Records the selected database.
    pub fn set_db(&self, db: usize) {
        // Database indexes are below `databases`, far from u32's bound.
        let db = u32::try_from(db).unwrap_or(u32::MAX);
        self.info.db.store(db, Ordering::Relaxed);
    }

    /// Records the protocol version.
    pub fn set_resp(&self, version: u32) {
        self.info
            .resp
            .store(if version == 3 { 3 } else { 2 }, Ordering::Relaxed);
        self.info.mailbox.set_version(if version == 3 {
            protocol::Version::Resp3
        } else {
            protocol::Version::Resp2
        });
    }

    /// Records the client's subscription counts: channels, patterns, shard channels.
    pub fn set_subscriptions(&self, counts: (usize, usize, usize)) {
        // Each subscription costs far more than a byte: no client comes near u32's bound.
        let narrow = |count: usize| u32::try_from(count).unwrap_or(u32::MAX);
        let [channels, patterns, shard] = &self.info.subscriptions;
        channels.store(narrow(counts.0), Ordering::Relaxed);
        patterns.store(narrow(counts.1), Ordering::Relaxed);
        shard.store(narrow(counts.2), Ordering::Relaxed);
    }

    /// The connection name, if set.
    pub fn name(&self) -> Option<Bytes> {
        self.info
            .names
            .lock()
            .as_ref()
            .and_then(|names| names.name.clone())
    }

    /// Records the ACL user the client logged in as.
    pub fn set_user(&self, user: &[u8]) {
        let user = (user != crate::acl::DEFAULT_USER).then(|| Bytes::copy_from_slice(user));
        let mut names = self.info.names.lock();
        if user.is_some() || names.is_some() {
            names.get_or_insert_default().user = user;
        }
    }

    /// Sets or clears (`None`) the connection name.
    pub fn set_name(&self, name: Option<Bytes>) {
        let mut names = self.info.names.lock();
        if name.is_some() || names.is_some() {
            names.get_or_insert_default().name = name;
        }
    }

    /// Sets the library name or version reported by CLIENT SETINFO.
    pub fn set_lib(&self, name: Option<Bytes>, version: Option<Bytes>) {
        if name.is_none() && version.is_none() {
            return;
        }
        let mut guard = self.info.names.lock();
        let names = guard.get_or_insert_default();
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
        let info = &self.info;
        info.gone.store(true, Ordering::Release);
        info.registry.clients.lock().remove(&info.id);
        if let Some(admission) = info.registry.admission.as_ref().filter(|_| info.counted) {
            admission.release(info.addr().ip());
            tracing::debug!(peer = %info.addr(), "closed");
        }
    }
}

impl ClientInfo {
    /// Milliseconds since the client last ran a command (or connected).
    pub fn idle_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.last_command_at_ms.load(Ordering::Relaxed))
    }

    /// Whether the client is logged in as `user`.
    pub fn is_user(&self, user: &[u8]) -> bool {
        match self
            .names
            .lock()
            .as_ref()
            .and_then(|names| names.user.as_ref())
        {
            Some(name) => name.as_ref() == user,
            None => user == crate::acl::DEFAULT_USER,
        }
    }

    /// The name of the command the client ran last (`auth`, `client|kill`).
    pub fn last_command_name(&self) -> Option<&'static str> {
        name_at_address(self.last_command.load(Ordering::Relaxed))
    }

    /// Kind of client for CLIENT LIST TYPE (every client is a normal one for now).
    pub fn kind(&self) -> &'static str {
        if self.is_subscribed() {
            "pubsub"
        } else {
            "normal"
        }
    }

    /// True while the client has a Pub/Sub subscription of any kind.
    pub fn is_subscribed(&self) -> bool {
        self.subscriptions
            .iter()
            .any(|count| count.load(Ordering::Relaxed) > 0)
    }

    /// CLIENT LIST's `flags`, in Redis's order: `P` subscribed, `b` blocked, `t` tracking,
    /// `R` tracking redirect broken, `B` tracking in BCAST mode; `N` for none.
    fn flags(&self) -> String {
        let tracking = self.tracking.load(Ordering::Relaxed);
        let flags: String = [
            (self.is_subscribed(), 'P'),
            (self.is_blocked(), 'b'),
            (tracking & TRACKING_ON != 0, 't'),
            (tracking & TRACKING_BROKEN != 0, 'R'),
            (tracking & TRACKING_BCAST != 0, 'B'),
        ]
        .into_iter()
        .filter_map(|(set, flag)| set.then_some(flag))
        .collect();
        if flags.is_empty() {
            "N".to_string()
        } else {
            flags
        }
    }

    /// Records the client's tracking options for CLIENT LIST (`t`, `R`, `B`, `redir`).
    pub fn set_tracking(&self, settings: &Settings) {
        let bits = [
            (settings.on, TRACKING_ON),
            (settings.on && settings.bcast, TRACKING_BCAST),
            (settings.on && settings.broken, TRACKING_BROKEN),
        ]
        .into_iter()
        .filter_map(|(set, bit)| set.then_some(bit))
        .fold(0, |all, bit| all | bit);
        self.tracking.store(bits, Ordering::Relaxed);
        self.tracking_redirect
            .store(settings.redirect_id(), Ordering::Relaxed);
    }

    /// True once the connection has closed.
    pub fn is_gone(&self) -> bool {
        self.gone.load(Ordering::Acquire)
    }

    /// True while the client waits in a blocking command.
    pub fn is_blocked(&self) -> bool {
        self.blocked.lock().is_some()
    }

    /// Records the blocking command the client waits in (`None`: it no longer waits).
    pub fn set_blocked(&self, waiter: Option<Arc<Waiter>>) {
        *self.blocked.lock() = waiter;
    }

    /// The peer address (`ip:port`), as CLIENT LIST shows it.
    pub fn addr(&self) -> SocketAddr {
        self.addresses.peer()
    }

    /// The local address the client connected to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addresses.local()
    }

    /// Seconds since the client connected.
    pub fn age_secs(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.connected_at_ms) / 1000
    }
}

/// Shuts both directions of the socket `fd` down (its owner then reads end-of-file).
#[cfg(unix)]
#[allow(unsafe_code)]
fn shutdown_socket(fd: i32) {
    // SAFETY: `shutdown` only changes the state of the socket behind `fd`, which the caller
    // guarantees is still open; a failure (already shut) is harmless.
    unsafe {
        libc::shutdown(fd, libc::SHUT_RDWR);
    }
}

#[cfg(not(unix))]
fn shutdown_socket(_fd: i32) {}

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
