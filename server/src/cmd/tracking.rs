//! CLIENT TRACKING, CACHING, GETREDIR and TRACKINGINFO: client-side caching as a connection
//! sees it. The table and the invalidations are [`crate::tracking`]; this module keeps the
//! connection's side ([`ClientTracking`]) and records the keys of its reads ([`begin_read`]).

use protocol::Argv;

use super::{arg_i64, is, CmdError, Command, Ctx};
use crate::sync::Arc;
use crate::tracking::{Settings, Tracker, Tracking};
use protocol::catalogue::CommandFlags;

const SYNTAX: CmdError = CmdError::new("ERR syntax error");

/// A connection's client-side caching state (made by its first CLIENT TRACKING ON, kept
/// across OFF and ON as Redis keeps a client's entries; dropped by RESET and disconnection).
pub struct ClientTracking {
    table: std::sync::Arc<Tracking>,
    tracker: Arc<Tracker>,
    /// Tracking is on.
    on: bool,
    /// Tracking is on in default mode: read-only commands record their keys.
    records_reads: bool,
    /// OPTIN / OPTOUT, as last enabled.
    optin: bool,
    optout: bool,
    /// CLIENT CACHING YES / NO, for the next command (or the next transaction).
    caching: Option<bool>,
    /// Sequence number of this connection's last recording command.
    seq: u64,
}

impl ClientTracking {
    /// True while tracking is on: invalidations for this connection may arrive at any
    /// command, and it passes them on after each one.
    pub fn is_on(&self) -> bool {
        self.on
    }

    fn disable(&mut self) {
        self.table.disable(&self.tracker);
        self.on = false;
        self.records_reads = false;
        self.caching = None;
    }
}

impl Drop for ClientTracking {
    fn drop(&mut self) {
        self.disable();
    }
}

/// Records the keys `command` is about to read, if the connection tracks them; returns the
/// sequence number to pass to [`end_read`] once the command has run.
#[inline]
pub fn begin_read(ctx: &mut Ctx<'_>, command: &Command, args: Argv<'_>) -> Option<u64> {
    let tracking = ctx.session.tracking.as_deref_mut()?;
    if !tracking.records_reads
        || !command.spec.flags.contains(CommandFlags::READONLY)
        || is_read_only_script(command)
    {
        return None;
    }
    if (tracking.optin && tracking.caching != Some(true))
        || (tracking.optout && tracking.caching == Some(false))
    {
        return None;
    }
    tracking.seq += 1;
    let seq = tracking.seq;
    let table = &ctx.shared.tracking;
    command.spec.for_each_key_position(args, |at| {
        if let Some(key) = args.get(at) {
            table.remember(&tracking.tracker, seq, key);
        }
    });
    Some(seq)
}

/// The command [`begin_read`] numbered `seq` has read its keys.
#[inline]
pub fn end_read(ctx: &Ctx<'_>, seq: u64) {
    if let Some(tracking) = ctx.session.tracking.as_deref() {
        tracking.tracker.finish(seq);
    }
}

/// EVAL_RO, EVALSHA_RO and FCALL_RO: their reads are recorded command by command inside
/// the script, not from the keys they declare (as Redis 7.2; 7.0 recorded the declared keys
/// on every read-only call the script made).
fn is_read_only_script(command: &Command) -> bool {
    matches!(command.name, "eval_ro" | "evalsha_ro" | "fcall_ro")
}

/// After a command at the top level: CLIENT CACHING applies to the next command only, or to
/// a whole transaction, and CLIENT commands leave it in place (as Redis).
pub fn after_command(ctx: &mut Ctx<'_>, command: &Command) {
    let in_multi = ctx.session.multi.is_some();
    if let Some(tracking) = ctx.session.tracking.as_deref_mut() {
        if !in_multi && !command.name.starts_with("client|") {
            tracking.caching = None;
        }
    }
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]
pub fn client_tracking(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let mut redirect: Option<Arc<crate::clients::ClientInfo>> = None;
    let mut wanted = Settings::default();
    let mut i = 3;
    while i < args.len() {
        let arg = &args[i];
        let has_value = i + 1 < args.len();
        if is(arg, "redirect") && has_value {
            i += 1;
            if redirect.is_some() {
                return Err(CmdError::new(
                    "ERR A client can only redirect to a single other client",
                ));
            }
            let id = arg_i64(&args[i])?;
            let target = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.session.client.registry().client(id))
                .ok_or(CmdError::new(
                    "ERR The client ID you want redirect to does not exist",
                ))?;
            redirect = Some(target);
        } else if is(arg, "bcast") {
            wanted.bcast = true;
        } else if is(arg, "optin") {
            wanted.optin = true;
        } else if is(arg, "optout") {
            wanted.optout = true;
        } else if is(arg, "noloop") {
            wanted.noloop = true;
        } else if is(arg, "prefix") && has_value {
            i += 1;
            wanted.prefixes.push(args[i].into());
        } else {
            return Err(SYNTAX);
        }
        i += 1;
    }
    wanted.redirect = redirect;
    if is(&args[2], "off") {
        if let Some(tracking) = ctx.session.tracking.as_deref_mut() {
            tracking.disable();
        }
        ctx.out.ok();
        return Ok(());
    }
    if !is(&args[2], "on") {
        return Err(SYNTAX);
    }
    let current = ctx
        .session
        .tracking
        .as_deref()
        .filter(|tracking| tracking.on)
        .map(|tracking| tracking.tracker.settings());
    check_options(&wanted, current.as_ref())?;
    let tracking = ctx.session.tracking.get_or_insert_with(|| {
        Box::new(ClientTracking {
            table: std::sync::Arc::clone(&ctx.shared.tracking),
            tracker: Tracker::new(ctx.session.client.shared_info()),
            on: false,
            records_reads: false,
            optin: false,
            optout: false,
            caching: None,
            seq: 0,
        })
    });
    tracking.on = true;
    tracking.records_reads = !wanted.bcast;
    tracking.optin = wanted.optin;
    tracking.optout = wanted.optout;
    ctx.shared.tracking.enable(&tracking.tracker, wanted);
    ctx.out.ok();
    Ok(())
}

/// CLIENT TRACKING ON's checks, in Redis's order and with its errors.
fn check_options(wanted: &Settings, current: Option<&Settings>) -> Result<(), CmdError> {
    if !wanted.bcast && !wanted.prefixes.is_empty() {
        return Err(CmdError::new(
            "ERR PREFIX option requires BCAST mode to be enabled",
        ));
    }
    if current.is_some_and(|current| current.bcast != wanted.bcast) {
        return Err(CmdError::new(
            "ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if wanted.bcast && (wanted.optin || wanted.optout) {
        return Err(CmdError::new(
            "ERR OPTIN and OPTOUT are not compatible with BCAST",
        ));
    }
    if wanted.optin && wanted.optout {
        return Err(CmdError::new(
            "ERR You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if current
        .is_some_and(|current| (wanted.optin && current.optout) || (wanted.optout && current.optin))
    {
        return Err(CmdError::new(
            "ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if wanted.bcast {
        check_prefixes(&wanted.prefixes, current.map_or(&[][..], |c| &c.prefixes))?;
    }
    Ok(())
}

/// A client's prefixes may not overlap (one a prefix of another): a key would be reported
/// twice.
fn check_prefixes(wanted: &[Box<[u8]>], existing: &[Box<[u8]>]) -> Result<(), CmdError> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, prefix) in wanted.iter().enumerate() {
        if let Some(other) = existing.iter().find(|other| overlap(prefix, other)) {
            return Err(CmdError::owned(format!(
                "ERR Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(other)
            )));
        }
        if let Some(other) = wanted[i + 1..].iter().find(|other| overlap(prefix, other)) {
            return Err(CmdError::owned(format!(
                "ERR Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                String::from_utf8_lossy(prefix),
                String::from_utf8_lossy(other)
            )));
        }
    }
    Ok(())
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked (OPTIN / OPTOUT).
pub fn client_caching(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let tracking = ctx
        .session
        .tracking
        .as_deref_mut()
        .filter(|tracking| tracking.records_reads && (tracking.optin || tracking.optout))
        .ok_or(CmdError::new(
            "ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ))?;
    if is(&args[2], "yes") {
        if !tracking.optin {
            return Err(CmdError::new(
                "ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
        tracking.caching = Some(true);
    } else if is(&args[2], "no") {
        if !tracking.optout {
            return Err(CmdError::new(
                "ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
        tracking.caching = Some(false);
    } else {
        return Err(SYNTAX);
    }
    ctx.out.ok();
    Ok(())
}

/// The connection's tracking options now (all off when it never enabled tracking).
fn settings(ctx: &Ctx<'_>) -> Settings {
    ctx.session
        .tracking
        .as_deref()
        .map(|tracking| tracking.tracker.settings())
        .unwrap_or_default()
}

/// CLIENT GETREDIR: -1 with tracking off, 0 without a redirect, else the target's id.
pub fn client_getredir(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let redirect = settings(ctx).redirect_id();
    ctx.out.int(redirect);
    Ok(())
}

/// CLIENT TRACKINGINFO: flags, redirect and prefixes, as Redis lists them.
pub fn client_trackinginfo(ctx: &mut Ctx<'_>, _args: Argv<'_>) -> Result<(), CmdError> {
    let settings = settings(ctx);
    let caching = ctx
        .session
        .tracking
        .as_deref()
        .and_then(|tracking| tracking.caching);
    let flags: Vec<&str> = if settings.on {
        [
            (true, "on"),
            (settings.bcast, "bcast"),
            (settings.optin, "optin"),
            (settings.optin && caching == Some(true), "caching-yes"),
            (settings.optout, "optout"),
            (settings.optout && caching == Some(false), "caching-no"),
            (settings.noloop, "noloop"),
            (settings.broken, "broken_redirect"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect()
    } else {
        vec!["off"]
    };
    let out = &mut *ctx.out;
    out.map(3);
    out.bulk(b"flags");
    out.set(flags.len());
    for flag in flags {
        out.bulk(flag.as_bytes());
    }
    out.bulk(b"redirect");
    out.int(settings.redirect_id());
    out.bulk(b"prefixes");
    out.array(settings.prefixes.len());
    for prefix in &settings.prefixes {
        out.bulk(prefix);
    }
    Ok(())
}

/// After a top-level command of a tracking connection: invalidations its command caused for
/// itself go out right after its reply, as in Redis (others' follow at the batch's end).
#[inline]
pub fn pass_on_invalidations(ctx: &mut Ctx<'_>) {
    if ctx
        .session
        .tracking
        .as_deref()
        .is_some_and(ClientTracking::is_on)
    {
        // An overflowed mailbox is found again, and the connection closed, at the batch's end.
        let _ = ctx
            .session
            .client
            .info()
            .mailbox
            .drain_into(&mut ctx.out.buf);
    }
}
