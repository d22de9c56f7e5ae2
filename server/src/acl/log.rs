//! ACL LOG: the most recent refusals (commands, keys, channels, failed logins), grouped as
//! Redis groups them: a refusal like one logged less than a minute ago counts on that entry.

use std::collections::VecDeque;

use crate::sync::Mutex;

/// Entries closer together than this with the same reason, context, object and user are one.
const GROUPING_MS: u64 = 60_000;
/// Redis's default `acllog-max-len`.
pub const DEFAULT_MAX_LEN: usize = 128;

/// What was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogReason {
    /// A command.
    Command,
    /// A key.
    Key,
    /// A channel.
    Channel,
    /// A login (AUTH, HELLO AUTH).
    Auth,
}

impl LogReason {
    fn as_str(self) -> &'static str {
        match self {
            LogReason::Command => "command",
            LogReason::Key => "key",
            LogReason::Channel => "channel",
            LogReason::Auth => "auth",
        }
    }
}

/// One entry of ACL LOG.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// How many refusals it groups.
    pub count: u64,
    reason: LogReason,
    /// `toplevel`, `multi` or `lua`.
    context: &'static str,
    /// The command, key or channel refused (`AUTH` for a login).
    object: Vec<u8>,
    username: Vec<u8>,
    /// When the last refusal of the group happened.
    at_ms: u64,
    /// CLIENT LIST line of the client refused last.
    client_info: String,
}

impl LogEntry {
    /// The fields as ACL LOG replies them, in order: name and value (as text, counted or
    /// not), with `count` an integer.
    pub fn fields(&self, now_ms: u64) -> [(&'static str, LogValue); 7] {
        let age = now_ms.saturating_sub(self.at_ms) as f64 / 1000.0;
        [
            ("count", LogValue::Int(self.count as i64)),
            (
                "reason",
                LogValue::Text(self.reason.as_str().as_bytes().to_vec()),
            ),
            ("context", LogValue::Text(self.context.as_bytes().to_vec())),
            ("object", LogValue::Text(self.object.clone())),
            ("username", LogValue::Text(self.username.clone())),
            ("age-seconds", LogValue::Double(age)),
            (
                "client-info",
                LogValue::Text(self.client_info.clone().into_bytes()),
            ),
        ]
    }
}

/// A value of an ACL LOG field.
#[derive(Debug, Clone)]
pub enum LogValue {
    /// An integer reply.
    Int(i64),
    /// A double (a bulk string in RESP2).
    Double(f64),
    /// A bulk string.
    Text(Vec<u8>),
}

/// The log: newest first, bounded.
pub struct AclLog {
    entries: Mutex<VecDeque<LogEntry>>,
    max_len: std::sync::atomic::AtomicUsize,
}

impl Default for AclLog {
    fn default() -> Self {
        AclLog {
            entries: Mutex::new(VecDeque::new()),
            max_len: std::sync::atomic::AtomicUsize::new(DEFAULT_MAX_LEN),
        }
    }
}

impl AclLog {
    /// Records a refusal.
    #[allow(clippy::too_many_arguments)]
    pub fn record(
        &self,
        reason: LogReason,
        context: &'static str,
        object: &[u8],
        username: &[u8],
        now_ms: u64,
        client_info: impl FnOnce() -> String,
    ) {
        let max_len = self.max_len();
        let mut entries = self.entries.lock();
        let similar = entries.iter().position(|entry| {
            entry.reason == reason
                && entry.context == context
                && entry.object == object
                && entry.username == username
                && now_ms.saturating_sub(entry.at_ms) < GROUPING_MS
        });
        let entry = match similar.and_then(|i| entries.remove(i)) {
            Some(mut entry) => {
                entry.count += 1;
                entry.at_ms = now_ms;
                entry.client_info = client_info();
                entry
            }
            None => LogEntry {
                count: 1,
                reason,
                context,
                object: object.to_vec(),
                username: username.to_vec(),
                at_ms: now_ms,
                client_info: client_info(),
            },
        };
        entries.push_front(entry);
        entries.truncate(max_len);
    }

    /// The newest `count` entries (all when `None`).
    pub fn newest(&self, count: Option<usize>) -> Vec<LogEntry> {
        let entries = self.entries.lock();
        entries
            .iter()
            .take(count.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }

    /// ACL LOG RESET.
    pub fn reset(&self) {
        self.entries.lock().clear();
    }

    /// `acllog-max-len`.
    pub fn max_len(&self) -> usize {
        self.max_len.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// CONFIG SET acllog-max-len: trims the log at once.
    pub fn set_max_len(&self, max_len: usize) {
        self.max_len
            .store(max_len, std::sync::atomic::Ordering::Relaxed);
        self.entries.lock().truncate(max_len);
    }
}
