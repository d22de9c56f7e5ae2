//! Access control lists: users, their passwords and what each may run, on which keys and
//! channels (issue 19, section 2), with Redis 7's rules, texts and replies.
//!
//! Cost on the request path: a connection keeps the rules of its user as of the ACL's
//! generation number; each command compares that number with the current one (one relaxed
//! atomic load) and, for a user allowed everything, does nothing more. A change to any user
//! bumps the generation, so connections pick the new rules up at their next command:
//! changes apply at once to logged-in clients, as in Redis. Deleting a user disconnects its
//! clients; narrowing a user's channels disconnects its subscribers.

mod log;
mod selector;
mod user;

use std::collections::BTreeMap;
use std::sync::Arc;

use protocol::catalogue::KeyFlags;
use protocol::Argv;

pub use log::{AclLog, LogEntry, LogReason, LogValue};
pub use selector::{category, row_id_of, Denial, Selector, CATEGORIES};
pub use user::{merge_selector_args, User};

use crate::cmd::Command;
use crate::sync::{AtomicU64, Mutex, Ordering};

/// The error of a failed AUTH or HELLO AUTH: one text for a wrong password, an unknown user
/// and a disabled one, as Redis, so that it tells an attacker nothing.
pub const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// The user new connections are logged in as.
pub const DEFAULT_USER: &[u8] = b"default";

/// A user's rules as connections read them: shared, replaced whole on every change.
pub type Rules = Arc<RulesSnapshot>;

/// One version of a user's rules, with what the request path needs precomputed.
#[derive(Debug)]
pub struct RulesSnapshot {
    /// The user's name.
    pub name: Arc<[u8]>,
    /// The rules.
    pub user: User,
    /// The root selector allows every command, key and channel: no checks needed.
    pub unrestricted: bool,
}

impl RulesSnapshot {
    fn new(name: Arc<[u8]>, user: User) -> Rules {
        let unrestricted = user.root.allows_everything();
        Arc::new(RulesSnapshot {
            name,
            user,
            unrestricted,
        })
    }

    /// Whether the user may run `command` with `args`: `Ok`, or what the most relevant
    /// selector refused (the one that got furthest, as Redis reports).
    pub fn check(&self, command: &Command, args: Argv<'_>) -> Result<(), Denial> {
        if self.unrestricted
            || command
                .spec
                .flags
                .contains(protocol::catalogue::CommandFlags::NO_AUTH)
        {
            return Ok(());
        }
        let mut worst: Option<Denial> = None;
        for selector in std::iter::once(&self.user.root).chain(&self.user.selectors) {
            match check_selector(selector, command, args) {
                Ok(()) => return Ok(()),
                Err(denial) => {
                    if worst.is_none_or(|w| denial.rank() > w.rank()) {
                        worst = Some(denial);
                    }
                }
            }
        }
        Err(worst.unwrap_or(Denial::Command))
    }
}

/// Channel arguments of the commands that name channels: (first position, step, is pattern).
fn channel_positions(command: &Command) -> Option<(usize, usize, bool)> {
    match command.name {
        "publish" | "spublish" => Some((1, usize::MAX, false)),
        "subscribe" | "ssubscribe" => Some((1, 1, false)),
        "psubscribe" => Some((1, 1, true)),
        _ => None,
    }
}

fn check_selector(
    selector: &selector::Selector,
    command: &Command,
    args: Argv<'_>,
) -> Result<(), Denial> {
    let first_arg = (args.len() > 1).then(|| &args[1]);
    if !selector.allows_command(usize::from(command.id), first_arg) {
        return Err(Denial::Command);
    }
    let mut denied = None;
    for spec in command.spec.key_specs {
        if spec.flags.contains(KeyFlags::NOT_KEY) {
            continue;
        }
        spec.positions(args, &mut |position| {
            if denied.is_none() && !selector.allows_key(&args[position], spec.flags) {
                denied = Some(position);
            }
        });
    }
    if let Some(position) = denied {
        return Err(Denial::Key(position));
    }
    if let Some((first, step, is_pattern)) = channel_positions(command) {
        let mut position = first;
        while position < args.len() {
            if !selector.allows_channel(&args[position], is_pattern) {
                return Err(Denial::Channel(position));
            }
            position = position.saturating_add(step);
        }
    }
    Ok(())
}

/// The NOPERM error for a denial at the top level (or in MULTI).
pub fn noperm_text(denial: Denial, command: &Command) -> String {
    match denial {
        Denial::Command => format!(
            "NOPERM this user has no permissions to run the '{}' command",
            command.full_name()
        ),
        Denial::Key(_) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments"
                .to_owned()
        }
        Denial::Channel(_) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments"
                .to_owned()
        }
    }
}

/// The server's users, the generation counter connections compare against, and the log.
pub struct Acl {
    users: Mutex<BTreeMap<Vec<u8>, Rules>>,
    /// Bumped at every change of any user.
    generation: AtomicU64,
    /// Failed AUTH / HELLO AUTH attempts (INFO `acl_access_denied_auth`).
    denied_auth: AtomicU64,
    /// Refused commands, keys and channels (INFO `acl_access_denied_cmd` ...).
    denied_cmd: AtomicU64,
    denied_key: AtomicU64,
    denied_channel: AtomicU64,
    /// `requirepass` as last set (CONFIG GET returns it).
    requirepass: Mutex<String>,
    /// ACL LOG.
    pub log: AclLog,
}

impl Acl {
    /// The default user only, with `requirepass` set to `password` (empty: none).
    pub fn new(password: &str) -> Acl {
        let mut users = BTreeMap::new();
        let name: Arc<[u8]> = Arc::from(DEFAULT_USER);
        users.insert(
            DEFAULT_USER.to_vec(),
            RulesSnapshot::new(name, User::default_user()),
        );
        let acl = Acl {
            users: Mutex::new(users),
            generation: AtomicU64::new(1),
            denied_auth: AtomicU64::new(0),
            denied_cmd: AtomicU64::new(0),
            denied_key: AtomicU64::new(0),
            denied_channel: AtomicU64::new(0),
            requirepass: Mutex::new(String::new()),
            log: AclLog::default(),
        };
        acl.set_requirepass(password);
        acl
    }

    /// The current generation: rules read before a change carry an older number.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The rules of `name`, if the user exists.
    pub fn rules(&self, name: &[u8]) -> Option<Rules> {
        self.users.lock().get(name).cloned()
    }

    /// The default user's rules (every user table has one).
    pub fn default_rules(&self) -> Rules {
        self.rules(DEFAULT_USER)
            .unwrap_or_else(|| RulesSnapshot::new(Arc::from(DEFAULT_USER), User::default_user()))
    }

    /// Replaces the default user's passwords with `password` (empty: `nopass`), as
    /// `requirepass` and CONFIG SET requirepass do. Connections already authenticated stay so.
    pub fn set_requirepass(&self, password: &str) {
        *self.requirepass.lock() = password.to_owned();
        let rule = if password.is_empty() {
            "nopass".to_owned()
        } else {
            format!(">{password}")
        };
        let mut users = self.users.lock();
        if let Some(current) = users.get(DEFAULT_USER) {
            let mut user = current.user.clone();
            let _ = user.apply(b"resetpass", true);
            let _ = user.apply(rule.as_bytes(), true);
            let name = Arc::clone(&current.name);
            users.insert(DEFAULT_USER.to_vec(), RulesSnapshot::new(name, user));
        }
        drop(users);
        self.bump();
    }

    /// `requirepass` as last set.
    pub fn requirepass(&self) -> String {
        self.requirepass.lock().clone()
    }

    /// True if new connections must authenticate (the default user has a password or is off).
    pub fn password_required(&self) -> bool {
        self.default_rules().user.requires_auth()
    }

    /// Checks `password` for `user`: its rules, or [`WRONGPASS`] for an unknown or disabled
    /// user or a wrong password (counted).
    pub fn authenticate(&self, user: &[u8], password: &[u8]) -> Result<Rules, &'static str> {
        let found = self.rules(user);
        // The digest is computed even for an unknown user, so timing does not tell them apart.
        let accepted = match &found {
            Some(rules) => rules.user.enabled && rules.user.password_matches(password),
            None => {
                let _ = User::new(false).password_matches(password);
                false
            }
        };
        match found {
            Some(rules) if accepted => Ok(rules),
            _ => {
                self.denied_auth.fetch_add(1, Ordering::Relaxed);
                Err(WRONGPASS)
            }
        }
    }

    /// Creates or changes `name` with `rules` (applied to a copy: all or nothing). Returns
    /// the old and new rules for the caller to disconnect subscribers that lost channels.
    pub fn set_user(
        &self,
        name: &[u8],
        rules: &[Vec<u8>],
    ) -> Result<(Option<Rules>, Rules), String> {
        let mut users = self.users.lock();
        let old = users.get(name).cloned();
        let mut user = old
            .as_ref()
            .map_or_else(|| User::new(false), |rules| rules.user.clone());
        for rule in rules {
            user.apply(rule, false).map_err(|reason| {
                format!(
                    "ERR Error in ACL SETUSER modifier '{}': {reason}",
                    String::from_utf8_lossy(rule)
                )
            })?;
        }
        let shared_name = old
            .as_ref()
            .map_or_else(|| Arc::from(name), |rules| Arc::clone(&rules.name));
        let new = RulesSnapshot::new(shared_name, user);
        users.insert(name.to_vec(), Arc::clone(&new));
        drop(users);
        self.bump();
        Ok((old, new))
    }

    /// Deletes the users named (not `default`); returns how many existed.
    pub fn delete_users(&self, names: &[&[u8]]) -> usize {
        let mut users = self.users.lock();
        let deleted = names
            .iter()
            .filter(|name| users.remove(**name).is_some())
            .count();
        drop(users);
        if deleted > 0 {
            self.bump();
        }
        deleted
    }

    /// Replaces every user at once (ACL LOAD); the default user is created if missing.
    pub fn replace_all(&self, new_users: BTreeMap<Vec<u8>, User>) {
        let mut table = BTreeMap::new();
        for (name, user) in new_users {
            let shared: Arc<[u8]> = Arc::from(name.as_slice());
            table.insert(name, RulesSnapshot::new(shared, user));
        }
        table
            .entry(DEFAULT_USER.to_vec())
            .or_insert_with(|| RulesSnapshot::new(Arc::from(DEFAULT_USER), User::default_user()));
        *self.users.lock() = table;
        self.bump();
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<Rules> {
        self.users.lock().values().cloned().collect()
    }

    /// Counts a refusal for INFO.
    pub fn count_denial(&self, denial: Denial) {
        let counter = match denial {
            Denial::Command => &self.denied_cmd,
            Denial::Key(_) => &self.denied_key,
            Denial::Channel(_) => &self.denied_channel,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Refusal counts for INFO stats: auth, cmd, key, channel.
    pub fn denied_counts(&self) -> [u64; 4] {
        [
            self.denied_auth.load(Ordering::Relaxed),
            self.denied_cmd.load(Ordering::Relaxed),
            self.denied_key.load(Ordering::Relaxed),
            self.denied_channel.load(Ordering::Relaxed),
        ]
    }

    /// Failed authentications since start (INFO `acl_access_denied_auth`).
    pub fn denied(&self) -> u64 {
        self.denied_auth.load(Ordering::Relaxed)
    }

    /// ACL LIST's lines (bytes: names and patterns may hold any byte).
    pub fn list(&self) -> Vec<Vec<u8>> {
        self.users()
            .iter()
            .map(|rules| [&b"user "[..], &rules.name, b" ", &rules.user.describe()].concat())
            .collect()
    }
}

/// A connection's login: its user's rules as of a generation.
pub struct Login {
    /// The rules in force for this connection.
    pub rules: Rules,
    /// The ACL generation `rules` were read at; `u64::MAX` forces a re-read.
    seen: u64,
    /// `seen` when `rules` allow everything, else `u64::MAX`: the fast path compares the
    /// current generation with this one number.
    unrestricted_at: u64,
}

impl Login {
    /// The default user, to be read from the ACL at the first command (a new session does
    /// not see the server's state yet).
    pub fn default_placeholder() -> Login {
        // One snapshot for every connection: a placeholder made per connection was three
        // allocations (about 300 bytes) per idle client.
        static PLACEHOLDER: std::sync::OnceLock<Rules> = std::sync::OnceLock::new();
        let rules = PLACEHOLDER
            .get_or_init(|| RulesSnapshot::new(Arc::from(DEFAULT_USER), User::default_user()));
        Login {
            rules: Arc::clone(rules),
            seen: 0,
            unrestricted_at: u64::MAX,
        }
    }

    /// Logged in as `rules`'s user, as of `generation`.
    pub fn new(rules: Rules, generation: u64) -> Login {
        let unrestricted_at = if rules.unrestricted {
            generation
        } else {
            u64::MAX
        };
        Login {
            rules,
            seen: generation,
            unrestricted_at,
        }
    }

    /// True if nothing needs checking: the user is allowed everything and no user changed
    /// since that was read.
    #[inline]
    pub fn unrestricted(&self, acl: &Acl) -> bool {
        self.unrestricted_at == acl.generation()
    }

    /// The current rules of this connection's user, re-read if any user changed; `None` if
    /// the user was deleted (the connection is being closed).
    pub fn refresh(&mut self, acl: &Acl) -> Option<&Rules> {
        let now = acl.generation();
        if self.seen != now {
            let rules = acl.rules(&self.rules.name)?;
            *self = Login::new(rules, now);
        }
        Some(&self.rules)
    }

    /// The user's name.
    pub fn user_name(&self) -> &[u8] {
        &self.rules.name
    }
}

/// ACL GENPASS: `bits` of randomness as lowercase hex (rounded up to whole hex digits).
pub fn generate_password(bits: usize) -> String {
    let digits = bits.div_ceil(4);
    let mut out = String::with_capacity(digits);
    let mut bytes = vec![0u8; digits.div_ceil(2)];
    fill_random(&mut bytes);
    for byte in &bytes {
        out.push_str(&format!("{byte:02x}"));
    }
    out.truncate(digits);
    out
}

fn fill_random(out: &mut [u8]) {
    use std::io::Read;
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(out));
    if from_os.is_err() {
        // No /dev/urandom: hash the clock and a counter (still unpredictable enough to differ
        // between calls, and never used for stored secrets other than those the user takes).
        use sha2::{Digest, Sha256};
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        for (i, chunk) in out.chunks_mut(32).enumerate() {
            let seed = format!(
                "{:?}{}{i}",
                std::time::SystemTime::now(),
                COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            let digest = Sha256::digest(seed.as_bytes());
            chunk.copy_from_slice(&digest[..chunk.len()]);
        }
    }
}

/// Parses an ACL file's text: one `user <name> <rules...>` per line, `#` comments and blank
/// lines ignored. Errors name the line, as Redis does.
pub fn parse_acl_file(text: &[u8], path: &str) -> Result<BTreeMap<Vec<u8>, User>, String> {
    let mut users = BTreeMap::new();
    for (index, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.trim_ascii();
        if line.is_empty() || line.starts_with(b"#") {
            continue;
        }
        let number = index + 1;
        let words: Vec<&[u8]> = line
            .split(|b| b.is_ascii_whitespace())
            .filter(|w| !w.is_empty())
            .collect();
        let (Some(&keyword), Some(&name)) = (words.first(), words.get(1)) else {
            return Err(format!(
                "{path}:{number}: line should start with user keyword"
            ));
        };
        if keyword != b"user" {
            return Err(format!(
                "{path}:{number}: line should start with user keyword"
            ));
        }
        let rules = merge_selector_args(words[2..].iter().copied()).map_err(|start| {
            format!(
                "{path}:{number}: Unmatched parenthesis in acl selector starting at '{}'.",
                String::from_utf8_lossy(&start)
            )
        })?;
        let mut user = User::new(false);
        for rule in &rules {
            user.apply(rule, false).map_err(|reason| {
                format!(
                    "{path}:{number}: Error in applying operation '{}': {reason}",
                    String::from_utf8_lossy(rule)
                )
            })?;
        }
        if users.insert(name.to_vec(), user).is_some() {
            return Err(format!(
                "{path}:{number}: Duplicate user '{}' found",
                String::from_utf8_lossy(name)
            ));
        }
    }
    Ok(users)
}
