//! Connection commands: PING, ECHO, HELLO, QUIT, RESET, SELECT, AUTH, CLIENT.

use bytes::Bytes;
use protocol::Argv;
use protocol::Version;

use super::{arg_i64, errors, is, CmdError, Ctx};
use crate::VERSION_FOR_CLIENTS;

/// PING [message]
pub fn ping(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    match args.len() {
        1 => ctx.out.simple("PONG"),
        2 => ctx.out.bulk(&args[1]),
        _ => {
            return Err(CmdError::new(
                "ERR wrong number of arguments for 'ping' command",
            ))
        }
    }
    Ok(())
}

/// ECHO message
pub fn echo(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.bulk(&args[1]);
    Ok(())
}

/// QUIT: replies OK, then the connection closes once the reply is written.
pub fn quit(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.ok();
    ctx.session.closing = true;
    Ok(())
}

/// RESET: back to RESP2, database 0, no name.
pub fn reset(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    ctx.out.version = Version::Resp2;
    ctx.session.multi = None;
    ctx.session.watching = None;
    ctx.session.subscriptions = None;
    ctx.session.client.set_subscriptions((0, 0, 0));
    ctx.session.tracking = None;
    ctx.session.db = 0;
    ctx.session.client.set_db(0);
    ctx.session.client.set_resp(2);
    ctx.session.client.set_name(None);
    // Back to the state of a new connection: the default user, authenticated only if it
    // needs no password.
    ctx.session.authenticated = !ctx.shared.acl.password_required();
    ctx.session.login =
        crate::acl::Login::new(ctx.shared.acl.default_rules(), ctx.shared.acl.generation());
    ctx.session.client.set_user(crate::acl::DEFAULT_USER);
    ctx.out.simple("RESET");
    Ok(())
}

fn parse_db_index(ctx: &Ctx<'_>, arg: &[u8]) -> Result<usize, CmdError> {
    let index = arg_i64(arg)?;
    usize::try_from(index)
        .ok()
        .filter(|&n| n < ctx.shared.store.db_count())
        .ok_or(errors::DB_OUT_OF_RANGE)
}

/// SELECT index
pub fn select(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let index = parse_db_index(ctx, &args[1])?;
    ctx.session.db = index;
    ctx.session.client.set_db(index);
    ctx.out.ok();
    Ok(())
}

/// The reply to any command but AUTH, HELLO ... AUTH, QUIT and RESET before a client has
/// authenticated, while a password is required.
pub const NOAUTH: &str = "NOAUTH Authentication required.";

/// Authenticates the connection as `user`, or fails with WRONGPASS (counted, and logged with
/// the peer's address, never the password).
fn log_in(ctx: &mut Ctx<'_>, user: &[u8], password: &[u8]) -> Result<(), CmdError> {
    let generation = ctx.shared.acl.generation();
    match ctx.shared.acl.authenticate(user, password) {
        Ok(rules) => {
            ctx.session.authenticated = true;
            ctx.session.client.set_user(&rules.name);
            ctx.session.login = crate::acl::Login::new(rules, generation);
            Ok(())
        }
        Err(text) => {
            let command = ctx
                .session
                .client
                .info()
                .last_command_name()
                .unwrap_or("auth");
            let client = &ctx.session.client;
            ctx.shared.acl.log.record(
                crate::acl::LogReason::Auth,
                "toplevel",
                command.as_bytes(),
                user,
                ctx.now_ms,
                || {
                    let mut line = String::new();
                    client
                        .registry()
                        .describe(client.info(), ctx.now_ms, &mut line);
                    line
                },
            );
            tracing::warn!(
                peer = %ctx.session.client.info().addr(),
                user = %String::from_utf8_lossy(user),
                "authentication failed"
            );
            Err(CmdError::new(text))
        }
    }
}

/// AUTH [username] password
pub fn auth(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    match args.len() {
        2 if !ctx.shared.acl.password_required() => Err(CmdError::new(
            "ERR AUTH <password> called without any password configured for the default user. \
             Are you sure your configuration is correct?",
        )),
        2 => {
            log_in(ctx, b"default", &args[1])?;
            ctx.out.ok();
            Ok(())
        }
        3 => {
            log_in(ctx, &args[1], &args[2])?;
            ctx.out.ok();
            Ok(())
        }
        _ => Err(errors::SYNTAX),
    }
}

/// Rejects names Redis rejects: spaces, newlines, non-printable bytes.
fn validate_client_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        Ok(())
    } else {
        Err(CmdError::new(
            "ERR Client names cannot contain spaces, newlines or special characters.",
        ))
    }
}

/// HELLO [protover [AUTH username password] [SETNAME clientname]]
pub fn hello(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let mut version = ctx.out.version;
    let mut name: Option<&[u8]> = None;
    if let Some(protover) = args.get(1) {
        let requested = super::parse_i64(protover).ok_or(CmdError::new(
            "ERR Protocol version is not an integer or out of range",
        ))?;
        version = match requested {
            2 => Version::Resp2,
            3 => Version::Resp3,
            _ => return Err(CmdError::new("NOPROTO unsupported protocol version")),
        };
        let mut i = 2;
        while i < args.len() {
            if is(&args[i], "AUTH") && i + 2 < args.len() {
                // Authenticated as the option is met, as Redis does: a later bad option
                // fails HELLO but leaves the client logged in.
                log_in(ctx, &args[i + 1], &args[i + 2])?;
                i += 3;
            } else if is(&args[i], "SETNAME") && i + 1 < args.len() {
                validate_client_name(&args[i + 1])?;
                name = Some(&args[i + 1]);
                i += 2;
            } else {
                return Err(CmdError::owned(format!(
                    "ERR Syntax error in HELLO option '{}'",
                    super::printable(&args[i], 128)
                )));
            }
        }
    }
    if !ctx.session.authenticated && ctx.shared.acl.password_required() {
        return Err(CmdError::new(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the \
             HELLO AUTH <user> <pass> option can be used to authenticate the client and select \
             the RESP protocol version at the same time",
        ));
    }
    if let Some(name) = name {
        // As CLIENT SETNAME: an empty name clears it.
        ctx.session
            .client
            .set_name(Some(Bytes::copy_from_slice(name)).filter(|n| !n.is_empty()));
    }
    ctx.out.version = version;
    ctx.session
        .client
        .set_resp(if version == Version::Resp3 { 3 } else { 2 });
    let out = &mut *ctx.out;
    out.map(7);
    out.bulk(b"server");
    out.bulk(b"redis");
    out.bulk(b"version");
    out.bulk(VERSION_FOR_CLIENTS.as_bytes());
    out.bulk(b"proto");
    out.int(if version == Version::Resp3 { 3 } else { 2 });
    out.bulk(b"id");
    out.int(i64::try_from(ctx.session.client.info().id).unwrap_or(i64::MAX));
    out.bulk(b"mode");
    out.bulk(b"standalone");
    out.bulk(b"role");
    out.bulk(b"master");
    out.bulk(b"modules");
    out.array(0);
    Ok(())
}

/// CLIENT ID
pub fn client_id(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let id = ctx.session.client.info().id;
    ctx.out.int(i64::try_from(id).unwrap_or(i64::MAX));
    Ok(())
}

/// CLIENT SETNAME name (empty clears it)
pub fn client_setname(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    validate_client_name(&args[2])?;
    let name = Some(Bytes::copy_from_slice(&args[2])).filter(|n| !n.is_empty());
    ctx.session.client.set_name(name);
    ctx.out.ok();
    Ok(())
}

/// CLIENT GETNAME
pub fn client_getname(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    match ctx.session.client.name() {
        Some(name) => ctx.out.bulk(&name),
        None => ctx.out.null(),
    }
    Ok(())
}

/// CLIENT LIST [TYPE type] [ID id [id ...]]
pub fn client_list(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let mut kind: Option<&'static str> = None;
    let mut ids: Option<Vec<u64>> = None;
    let mut i = 2;
    while i < args.len() {
        if is(&args[i], "TYPE") && i + 1 < args.len() {
            let wanted = &args[i + 1];
            kind = Some(
                ["normal", "master", "replica", "slave", "pubsub"]
                    .into_iter()
                    .find(|k| is(wanted, k))
                    .ok_or_else(|| {
                        CmdError::owned(format!(
                            "ERR Unknown client type '{}'",
                            super::printable(wanted, 64)
                        ))
                    })?,
            );
            i += 2;
        } else if is(&args[i], "ID") && i + 1 < args.len() {
            let mut list = Vec::new();
            for arg in args.slice(i + 1..) {
                let id = super::parse_i64(arg)
                    .and_then(|n| u64::try_from(n).ok())
                    .filter(|&n| n > 0)
                    .ok_or(CmdError::new("ERR Invalid client ID"))?;
                list.push(id);
            }
            ids = Some(list);
            i = args.len();
        } else {
            return Err(errors::SYNTAX);
        }
    }
    let text = ctx.session.client.registry().list(ctx.now_ms, |client| {
        kind.is_none_or(|k| k == client.kind())
            && ids.as_ref().is_none_or(|ids| ids.contains(&client.id))
    });
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// CLIENT INFO
pub fn client_info(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let mut text = String::new();
    let client = &ctx.session.client;
    client
        .registry()
        .describe(client.info(), ctx.now_ms, &mut text);
    text.push('\n');
    ctx.out.verbatim(text.as_bytes());
    Ok(())
}

/// CLIENT SETINFO LIB-NAME name | LIB-VER version
pub fn client_setinfo(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let value = &args[3];
    if !value.iter().all(|&b| (b'!'..=b'~').contains(&b)) {
        return Err(CmdError::owned(format!(
            "ERR {} cannot contain spaces, newlines or special characters.",
            super::printable(&args[2], 64)
        )));
    }
    if is(&args[2], "LIB-NAME") {
        ctx.session
            .client
            .set_lib(Some(Bytes::copy_from_slice(value)), None);
    } else if is(&args[2], "LIB-VER") {
        ctx.session
            .client
            .set_lib(None, Some(Bytes::copy_from_slice(value)));
    } else {
        return Err(CmdError::owned(format!(
            "ERR Unrecognized option '{}'",
            super::printable(&args[2], 64)
        )));
    }
    ctx.out.ok();
    Ok(())
}

/// The filters of the new form of CLIENT KILL (every one given must match).
#[derive(Default)]
struct KillFilter<'a> {
    id: Option<u64>,
    kind: Option<&'static str>,
    addr: Option<&'a [u8]>,
    laddr: Option<&'a [u8]>,
    user: Option<&'a [u8]>,
    skip_me: bool,
    max_age: Option<u64>,
}

/// Parses `<option> <value> ...` of CLIENT KILL (from `args[2]`), with Redis's errors.
fn parse_kill_filter(args: Argv<'_>) -> Result<KillFilter<'_>, CmdError> {
    let mut filter = KillFilter {
        skip_me: true,
        ..KillFilter::default()
    };
    let mut i = 2;
    while i < args.len() {
        let (option, Some(value)) = (&args[i], args.get(i + 1)) else {
            return Err(errors::SYNTAX);
        };
        if is(option, "ID") {
            let id = super::parse_i64(value)
                .filter(|&n| n > 0)
                .ok_or(CmdError::new("ERR client-id should be greater than 0"))?;
            filter.id = u64::try_from(id).ok();
        } else if is(option, "TYPE") {
            let kind = ["normal", "master", "replica", "slave", "pubsub"]
                .into_iter()
                .find(|k| is(value, k))
                .ok_or_else(|| {
                    CmdError::owned(format!(
                        "ERR Unknown client type '{}'",
                        super::printable(value, 64)
                    ))
                })?;
            filter.kind = Some(if kind == "slave" { "replica" } else { kind });
        } else if is(option, "ADDR") {
            filter.addr = Some(value);
        } else if is(option, "LADDR") {
            filter.laddr = Some(value);
        } else if is(option, "USER") {
            filter.user = Some(value);
        } else if is(option, "SKIPME") {
            filter.skip_me = if is(value, "YES") {
                true
            } else if is(value, "NO") {
                false
            } else {
                return Err(errors::SYNTAX);
            };
        } else if is(option, "MAXAGE") {
            let age = super::parse_i64(value).ok_or(CmdError::new(
                "ERR maxage is not an integer or out of range",
            ))?;
            if age <= 0 {
                return Err(CmdError::new("ERR maxage should be greater than 0"));
            }
            filter.max_age = u64::try_from(age).ok();
        } else {
            return Err(errors::SYNTAX);
        }
        i += 2;
    }
    Ok(filter)
}

/// `CLIENT KILL ip:port` | `CLIENT KILL <filter> <value> ...`: disconnects clients. The old form
/// replies OK (or `ERR No such client`), the new one the number of clients killed. A client
/// that kills itself (old form, or SKIPME NO) gets its reply and then is closed.
pub fn client_kill(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let me = ctx.session.client.info().id;
    let registry = ctx.session.client.registry();
    let now = ctx.now_ms;
    let mut killed_me = false;
    if args.len() == 3 {
        let wanted = &args[2];
        let killed = registry.kill(me, |client| {
            let hit = client.addr().to_string().as_bytes() == wanted;
            killed_me |= hit && client.id == me;
            hit
        });
        if killed == 0 {
            return Err(CmdError::new("ERR No such client"));
        }
        ctx.out.ok();
    } else {
        let filter = parse_kill_filter(args)?;
        if let Some(user) = filter.user {
            if ctx.shared.acl.rules(user).is_none() {
                return Err(CmdError::owned(format!(
                    "ERR No such user '{}'",
                    super::printable(user, 64)
                )));
            }
        }
        let killed = registry.kill(me, |client| {
            let hit = filter.id.is_none_or(|id| id == client.id)
                && filter.kind.is_none_or(|kind| kind == client.kind())
                && filter
                    .addr
                    .is_none_or(|addr| client.addr().to_string().as_bytes() == addr)
                && filter
                    .laddr
                    .is_none_or(|addr| client.local_addr().to_string().as_bytes() == addr)
                && filter.max_age.is_none_or(|age| client.age_secs(now) > age)
                && filter.user.is_none_or(|user| client.is_user(user))
                && !(filter.skip_me && client.id == me);
            killed_me |= hit && client.id == me;
            hit
        });
        ctx.out.count(killed);
    }
    if killed_me {
        ctx.session.closing = true;
    }
    Ok(())
}

/// CLIENT HELP
pub fn client_help(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    super::reply_help(
        ctx,
        "CLIENT",
        &[
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "    * ID <client-id>",
            "      Kill connections by client id.",
            "    * MAXAGE <maxage>",
            "      Kill connections older than the specified age.",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "    * ID <client-id> [<client-id> ...]",
            "      Return clients with the given IDs.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "CACHING (YES|NO)",
            "    Track (YES, under OPTIN) or skip (NO, under OPTOUT) the keys of the next command.",
            "GETREDIR",
            "    The client id invalidations are redirected to (0: none, -1: tracking off).",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Client-side caching: be told when keys this client read (or, with BCAST,",
            "    any key under a prefix) change.",
            "TRACKINGINFO",
            "    This connection's tracking mode, redirect and prefixes.",
            "SETINFO <option> <value>",
            "    Set client meta attr. Options are:",
            "    * LIB-NAME: the client lib name.",
            "    * LIB-VER: the client lib version.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
        ],
    );
    Ok(())
}
