//! Who may connect at all, decided at accept: `maxclients`, protected mode (Redis's: without a
//! password, only loopback clients), and a bound on connections per client address (beyond
//! Redis). An admitted connection is counted until its [`Ticket`] is dropped, or, once the
//! connection is registered, until its registration is (see [`Ticket::hand_over`]).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::sync::Mutex;

/// Redis 7's reply to a non-loopback client in protected mode (clients and operators match
/// on `DENIED`; the text is Redis's, typo included).
pub const PROTECTED_MODE: &[u8] = b"-DENIED Redis is running in protected mode because protected \
mode is enabled and no password is set for the default user. In this mode connections are only \
accepted from the loopback interface. If you want to connect from external computers to Redis you \
may adopt one of the following solutions: 1) Just disable protected mode sending the command \
'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same \
host the server is running, however MAKE SURE Redis is not publicly accessible from internet if \
you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable \
the protected mode by editing the Redis configuration file, and setting the protected mode option \
to 'no', and then restarting the server. 3) If you started the server manually just for testing, \
restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the \
default user. NOTE: You only need to do one of the above things in order for the server to start \
accepting connections from the outside.\r\n";

/// The reply to a connection over `--max-connections-per-ip`.
pub const TOO_MANY_FROM_ADDRESS: &[u8] =
    b"-ERR max number of connections from this address reached\r\n";

/// Reply to a connection past `maxclients` (Redis's text).
pub const MAX_CLIENTS: &[u8] = b"-ERR max number of clients reached\r\n";

/// Accept-time rules, and the open connections (in all and per address).
pub struct Admission {
    protected_mode: AtomicBool,
    per_ip_limit: AtomicUsize,
    /// Connections admitted and not yet ended, TLS handshakes included.
    open: AtomicUsize,
    open_by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in the counts; given back when dropped (the connection
/// was handed over and failed, or its task ended or was aborted before it registered).
pub struct Ticket {
    /// `None` once handed to a registration.
    admission: Option<Arc<Admission>>,
    ip: IpAddr,
}

impl Ticket {
    /// Hands the counting over to a connection's registration, which gives the place back
    /// with [`Admission::release`] when it is dropped: true if the ticket is from `admission`
    /// (it no longer gives the place back itself); a ticket from another is dropped, giving
    /// its place back now. (The registration knows the address already: this keeps every
    /// connection's entry from carrying a second copy of it.)
    pub fn hand_over(mut self, admission: &Arc<Admission>) -> bool {
        let ours = self
            .admission
            .as_ref()
            .is_some_and(|from| Arc::ptr_eq(from, admission));
        if ours {
            self.admission = None;
        }
        ours
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if let Some(admission) = &self.admission {
            admission.release(self.ip);
        }
    }
}

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Protected mode: a non-loopback client while the default user has no password.
    ProtectedMode,
    /// Too many connections from its address.
    PerAddress,
    /// `maxclients` connections are open.
    MaxClients,
}

impl Refusal {
    /// The error line the client is sent before it is closed.
    pub fn message(self) -> &'static [u8] {
        match self {
            Refusal::ProtectedMode => PROTECTED_MODE,
            Refusal::PerAddress => TOO_MANY_FROM_ADDRESS,
            Refusal::MaxClients => MAX_CLIENTS,
        }
    }
}

fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

impl Admission {
    /// Rules as configured at start-up.
    pub fn new(protected_mode: bool, per_ip_limit: usize) -> Arc<Admission> {
        Arc::new(Admission {
            protected_mode: AtomicBool::new(protected_mode),
            per_ip_limit: AtomicUsize::new(per_ip_limit),
            open: AtomicUsize::new(0),
            open_by_ip: Mutex::new(HashMap::new()),
        })
    }

    /// `protected-mode`.
    pub fn protected_mode(&self) -> bool {
        self.protected_mode.load(Ordering::Relaxed)
    }

    /// CONFIG SET protected-mode.
    pub fn set_protected_mode(&self, on: bool) {
        self.protected_mode.store(on, Ordering::Relaxed);
    }

    /// `max-connections-per-ip` (0: no bound).
    pub fn per_ip_limit(&self) -> usize {
        self.per_ip_limit.load(Ordering::Relaxed)
    }

    /// CONFIG SET max-connections-per-ip: applies to new connections.
    pub fn set_per_ip_limit(&self, limit: usize) {
        self.per_ip_limit.store(limit, Ordering::Relaxed);
    }

    /// Admits a connection from `ip` (counting it until the ticket, or the registration it
    /// is handed to, is dropped) or says why not. `max_clients`: the `maxclients` setting;
    /// `password_required`: the default user needs a password (protected mode then lets
    /// everyone in, to authenticate).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_clients: usize,
        password_required: impl FnOnce() -> bool,
    ) -> Result<Ticket, Refusal> {
        if self.open.fetch_add(1, Ordering::AcqRel) >= max_clients {
            self.open.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::MaxClients);
        }
        let refusal = if self.protected_mode() && !is_loopback(ip) && !password_required() {
            Refusal::ProtectedMode
        } else {
            let limit = self.per_ip_limit();
            let mut open = self.open_by_ip.lock();
            let count = open.entry(ip).or_insert(0);
            if limit == 0 || *count < limit {
                *count += 1;
                return Ok(Ticket {
                    admission: Some(Arc::clone(self)),
                    ip,
                });
            }
            if *count == 0 {
                open.remove(&ip);
            }
            Refusal::PerAddress
        };
        self.open.fetch_sub(1, Ordering::AcqRel);
        Err(refusal)
    }

    /// Gives back an admitted connection's place in the counts (from a dropped [`Ticket`],
    /// or from the registration a ticket was handed to).
    pub fn release(&self, ip: IpAddr) {
        let mut open = self.open_by_ip.lock();
        if let Some(count) = open.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&ip);
            }
        }
        drop(open);
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Connections admitted and not yet ended.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Connections open from `ip` (tests, INFO).
    pub fn open_from(&self, ip: IpAddr) -> usize {
        self.open_by_ip.lock().get(&ip).copied().unwrap_or(0)
    }
}

#[cfg(all(test, not(kv_loom)))]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_refuses_remote_clients_without_a_password() {
        let admission = Admission::new(true, 0);
        let remote: IpAddr = "192.0.2.7".parse().expect("ip");
        let local: IpAddr = "::ffff:127.0.0.1".parse().expect("ip");
        assert_eq!(
            admission.admit(remote, usize::MAX, || false).err(),
            Some(Refusal::ProtectedMode)
        );
        assert!(admission.admit(local, usize::MAX, || false).is_ok());
        assert!(admission.admit(remote, usize::MAX, || true).is_ok());
        admission.set_protected_mode(false);
        assert!(admission.admit(remote, usize::MAX, || false).is_ok());
    }

    #[test]
    fn connections_per_address_are_counted_until_they_end() {
        let admission = Admission::new(false, 2);
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        let a = admission.admit(ip, usize::MAX, || false).expect("first");
        let b = admission.admit(ip, usize::MAX, || false).expect("second");
        assert_eq!(
            admission.admit(ip, usize::MAX, || false).err(),
            Some(Refusal::PerAddress)
        );
        assert!(admission
            .admit("10.1.2.4".parse().expect("ip"), usize::MAX, || false)
            .is_ok());
        drop(a);
        let c = admission
            .admit(ip, usize::MAX, || false)
            .expect("a freed slot is reused");
        assert_eq!(admission.open_from(ip), 2);
        drop((b, c));
        assert_eq!(admission.open_from(ip), 0);
    }

    #[test]
    fn maxclients_counts_every_admitted_connection_until_its_place_is_given_back() {
        let admission = Admission::new(false, 0);
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        let first = admission.admit(ip, 2, || false).expect("first");
        let second = admission.admit(ip, 2, || false).expect("second");
        assert_eq!(
            admission.admit(ip, 2, || false).err(),
            Some(Refusal::MaxClients)
        );
        assert_eq!(admission.open(), 2, "a refusal takes no place");
        // A ticket handed to a registration no longer gives the place back by itself: the
        // registration does, through `release`.
        assert!(first.hand_over(&admission));
        assert_eq!(admission.open(), 2);
        admission.release(ip);
        assert_eq!(admission.open(), 1);
        // A ticket handed to another admission's registration gives its place back at once.
        let elsewhere = Admission::new(false, 0);
        let stray = admission.admit(ip, 2, || false).expect("a free place");
        assert!(!stray.hand_over(&elsewhere));
        assert_eq!(admission.open(), 1);
        drop(second);
        assert_eq!((admission.open(), admission.open_from(ip)), (0, 0));
    }
}
