//! Who may connect at all, decided at accept: protected mode (Redis's: without a password,
//! only loopback clients), and a bound on connections per client address (beyond Redis).
//! `maxclients` is checked beside these in the accept loop.

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

/// Accept-time rules and the open connections per address.
pub struct Admission {
    protected_mode: AtomicBool,
    per_ip_limit: AtomicUsize,
    open_by_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection's place in its address's count; given back when dropped (the
/// connection ended, or its task was aborted).
pub struct PeerSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for PeerSlot {
    fn drop(&mut self) {
        let mut open = self.admission.open_by_ip.lock();
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
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
}

impl Refusal {
    /// The error line the client is sent before it is closed.
    pub fn message(self) -> &'static [u8] {
        match self {
            Refusal::ProtectedMode => PROTECTED_MODE,
            Refusal::PerAddress => TOO_MANY_FROM_ADDRESS,
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

    /// Admits a connection from `ip` (counting it until the slot is dropped) or says why
    /// not. `password_required`: the default user needs a password (protected mode then
    /// lets everyone in, to authenticate).
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        password_required: impl FnOnce() -> bool,
    ) -> Result<PeerSlot, Refusal> {
        if self.protected_mode() && !is_loopback(ip) && !password_required() {
            return Err(Refusal::ProtectedMode);
        }
        let limit = self.per_ip_limit();
        let mut open = self.open_by_ip.lock();
        let count = open.entry(ip).or_insert(0);
        if limit != 0 && *count >= limit {
            if *count == 0 {
                open.remove(&ip);
            }
            return Err(Refusal::PerAddress);
        }
        *count += 1;
        Ok(PeerSlot {
            admission: Arc::clone(self),
            ip,
        })
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
            admission.admit(remote, || false).err(),
            Some(Refusal::ProtectedMode)
        );
        assert!(admission.admit(local, || false).is_ok());
        assert!(admission.admit(remote, || true).is_ok());
        admission.set_protected_mode(false);
        assert!(admission.admit(remote, || false).is_ok());
    }

    #[test]
    fn connections_per_address_are_counted_until_they_end() {
        let admission = Admission::new(false, 2);
        let ip: IpAddr = "10.1.2.3".parse().expect("ip");
        let a = admission.admit(ip, || false).expect("first");
        let b = admission.admit(ip, || false).expect("second");
        assert_eq!(
            admission.admit(ip, || false).err(),
            Some(Refusal::PerAddress)
        );
        assert!(admission
            .admit("10.1.2.4".parse().expect("ip"), || false)
            .is_ok());
        drop(a);
        let c = admission
            .admit(ip, || false)
            .expect("a freed slot is reused");
        assert_eq!(admission.open_from(ip), 2);
        drop((b, c));
        assert_eq!(admission.open_from(ip), 0);
    }
}
