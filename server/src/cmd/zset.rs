//! Sorted-set commands: ZADD, ZINCRBY, ZREM, ZCARD, ZCOUNT, ZLEXCOUNT, ZSCORE, ZMSCORE,
//! ZRANK, ZREVRANK, the ZRANGE family (ZRANGE, ZRANGESTORE, ZREVRANGE, ZRANGEBYSCORE,
//! ZREVRANGEBYSCORE, ZRANGEBYLEX, ZREVRANGEBYLEX), ZREMRANGEBYRANK/SCORE/LEX, ZPOPMIN,
//! ZPOPMAX, ZMPOP, ZRANDMEMBER, ZUNION, ZINTER, ZDIFF (and their STORE forms), ZINTERCARD and
//! ZSCAN.
//!
//! As for hashes, reads run under the shard's read lock and writes under its write lock,
//! every argument and the key's type checked before anything changes; a sorted set emptied
//! by a command is deleted. Multi-key commands lock every shard involved at once
//! ([`Db::lock_keys`] / [`Db::read_keys`]), so they are atomic across shards.
//!
//! Scores are parsed as Redis parses them (`strtod`: decimal, hexadecimal, `inf`, with
//! `ERANGE` rejected for arguments, NaN never) and written as Redis 7.0 writes them
//! (`%.17g`, `inf`, `-inf`): a bulk string in RESP2, a double (`,`) in RESP3 where Redis 7
//! uses one. Writes propagate as sent (float arithmetic is IEEE-754 and deterministic, so
//! ZINCRBY replays to the same bits), and only when they changed something; the pops (ZPOPMIN,
//! ZPOPMAX, ZMPOP) propagate as the `ZPOPMIN|ZPOPMAX key count` they performed (Redis logs
//! ZMPOP that way and ZPOPMIN as sent, which replays the same).
//!
//! Keyspace notifications are Redis's, sent after the locks are dropped and only when
//! something changed: `zadd`, `zincr` (ZINCRBY and ZADD INCR), `zrem`, `zremrangeby*`,
//! `zpopmin`/`zpopmax` (ZMPOP too), and the store commands' own names (class `z`), then
//! `del` (class `g`) when a command empties a key and so removes it.
//!
//! # Pop API (for the blocking commands)
//!
//! BZPOPMIN, BZPOPMAX and BZMPOP reuse what ZPOPMIN and ZMPOP do, under the caller's lock:
//! - [`Side`]: which end to pop (`MIN` or `MAX`, parsed by [`Side::parse`]).
//! - [`pop_locked`]`(shard, hash, key, side, count, now_ms)`: pops up to `count` members from
//!   the sorted set at `key` (shard already write-locked by the caller), deletes the key if
//!   emptied, propagates `ZPOPMIN|ZPOPMAX key count` when it popped something, and returns
//!   the popped `(member, score)` pairs and whether the key was emptied (`Ok(None)`: no
//!   such key; `Err`: WRONGTYPE); [`notify_popped`] then sends the pop's notifications.
//! - [`MpopArgs::parse`]`(args, numkeys_at)`: the `numkeys key... MIN|MAX [COUNT n]` tail
//!   of ZMPOP (`numkeys_at` 1) and BZMPOP (`numkeys_at` 2, after the timeout), with Redis's
//!   errors; [`MpopArgs::keys`] lists the keys in argument order.
//! - [`write_popped`] (ZPOPMIN's reply shape), [`write_mpop_reply`] (ZMPOP's
//!   `[key, [[member, score], ...]]`), [`write_key_member_score`] (BZPOPMIN's
//!   `[key, member, score]`) and [`write_score`] (a score as RESP2 bulk / RESP3 double).

use std::borrow::Cow;
use std::collections::HashMap;

use protocol::{Argv, Version};

use super::collection::{reply_empty_scan, Random, ScanOptions, MAX_REPEATED_PICKS};
use super::{arg_i64, errors, is, parse_cursor, parse_i64, CmdError, Ctx, Reply};
use crate::glob::glob_match;
use crate::notify;
use crate::store::value::zset::Score;
use crate::store::value::Set;
use crate::store::value::ZSet;
use crate::store::{Db, Limits, Lookup, Shard, Value};

/// ZADD's or ZINCRBY's NaN result (`inf + -inf`).
const NAN_RESULT: CmdError = CmdError::new("ERR resulting score is not a number (NaN)");
/// A score range bound that does not parse.
const BAD_SCORE_RANGE: CmdError = CmdError::new("ERR min or max is not a float");
/// A lex range bound that does not parse.
const BAD_LEX_RANGE: CmdError = CmdError::new("ERR min or max not valid string range item");
/// ZPOPMIN's count below 0 (or not a number).
const NOT_POSITIVE: CmdError = CmdError::new("ERR value is out of range, must be positive");

// ---------------------------------------------------------------------------------------
// Numbers: strtod-compatible parsing and %.17g formatting.

/// Parses `text` as C's `strtod` would, requiring the whole text to be consumed. Returns the
/// value and whether `strtod` would have set `ERANGE` with an infinite or zero result
/// (overflow, or underflow to zero). NaN is refused.
fn strtod_whole(text: &[u8], skip_space: bool) -> Option<(f64, bool)> {
    let mut s = text;
    if skip_space {
        while let [first, rest @ ..] = s {
            if matches!(first, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r') {
                s = rest;
            } else {
                break;
            }
        }
    }
    let negative = s.first() == Some(&b'-');
    if matches!(s.first(), Some(b'-' | b'+')) {
        s = &s[1..];
    }
    let sign = if negative { -1.0 } else { 1.0 };
    if s.eq_ignore_ascii_case(b"inf") || s.eq_ignore_ascii_case(b"infinity") {
        return Some((sign * f64::INFINITY, false));
    }
    if s.len() >= 2 && s[0] == b'0' && (s[1] | 0x20) == b'x' {
        return parse_hex_float(&s[2..]).map(|(value, range)| (sign * value, range));
    }
    // Decimal: digits [. digits] [e [sign] digits], at least one mantissa digit.
    let mut i = 0;
    let mut mantissa_digits = 0;
    let mut nonzero = false;
    while i < s.len() && s[i].is_ascii_digit() {
        nonzero |= s[i] != b'0';
        i += 1;
        mantissa_digits += 1;
    }
    if i < s.len() && s[i] == b'.' {
        i += 1;
        while i < s.len() && s[i].is_ascii_digit() {
            nonzero |= s[i] != b'0';
            i += 1;
            mantissa_digits += 1;
        }
    }
    if mantissa_digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'e' {
        let mut j = i + 1;
        if j < s.len() && matches!(s[j], b'+' | b'-') {
            j += 1;
        }
        let digits_start = j;
        while j < s.len() && s[j].is_ascii_digit() {
            j += 1;
        }
        if j == digits_start {
            return None;
        }
        i = j;
    }
    if i != s.len() {
        return None;
    }
    let value: f64 = std::str::from_utf8(s).ok()?.parse().ok()?;
    let range_error = value.is_infinite() || (value == 0.0 && nonzero);
    Some((sign * value, range_error))
}

/// The part of a hexadecimal float after `0x`: hex digits with an optional point and an
/// optional binary exponent (`p[+-]digits`).
fn parse_hex_float(s: &[u8]) -> Option<(f64, bool)> {
    let mut mantissa: u64 = 0;
    let mut exponent: i64 = 0;
    let mut digits = 0;
    let mut nonzero = false;
    let mut i = 0;
    let mut seen_point = false;
    while i < s.len() {
        let c = s[i];
        if c == b'.' && !seen_point {
            seen_point = true;
            i += 1;
            continue;
        }
        let Some(value) = (c as char).to_digit(16) else {
            break;
        };
        digits += 1;
        nonzero |= value != 0;
        if mantissa >> 60 == 0 {
            mantissa = mantissa * 16 + u64::from(value);
            if seen_point {
                exponent -= 4;
            }
        } else if !seen_point {
            exponent += 4;
        }
        i += 1;
    }
    if digits == 0 {
        return None;
    }
    if i < s.len() && (s[i] | 0x20) == b'p' {
        let mut j = i + 1;
        let negative = j < s.len() && s[j] == b'-';
        if j < s.len() && matches!(s[j], b'+' | b'-') {
            j += 1;
        }
        let start = j;
        let mut power: i64 = 0;
        while j < s.len() && s[j].is_ascii_digit() {
            power = (power * 10 + i64::from(s[j] - b'0')).min(1 << 20);
            j += 1;
        }
        if j == start {
            return None;
        }
        exponent += if negative { -power } else { power };
        i = j;
    }
    if i != s.len() {
        return None;
    }
    let exponent = i32::try_from(exponent.clamp(-4000, 4000)).unwrap_or(0);
    // Split the scaling so that neither step overflows or flushes to zero early.
    let value = (mantissa as f64) * 2f64.powi(exponent / 2) * 2f64.powi(exponent - exponent / 2);
    let range_error = value.is_infinite() || (value == 0.0 && nonzero);
    Some((value, range_error))
}

/// A score argument (ZADD, ZINCRBY, WEIGHTS), parsed as Redis's `getDoubleFromObject`: no
/// leading space, nothing left over, no overflow or underflow to zero, no NaN.
pub(crate) fn parse_score(arg: &[u8]) -> Option<f64> {
    match strtod_whole(arg, false) {
        Some((value, false)) if !arg.is_empty() => Some(value),
        _ => None,
    }
}

/// A formatted score, on the stack (`%.17g` needs at most 24 bytes).
pub(crate) struct ScoreText {
    buf: [u8; 40],
    len: usize,
}

impl ScoreText {
    fn new() -> ScoreText {
        ScoreText {
            buf: [0; 40],
            len: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.push(b));
    }

    /// The text.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl std::fmt::Write for ScoreText {
    fn write_str(&mut self, text: &str) -> std::fmt::Result {
        self.extend(text.as_bytes());
        Ok(())
    }
}

/// Formats a score as Redis 7.0 does (`%.17g`; `inf`, `-inf`), without allocating.
pub(crate) fn format_score(value: f64) -> ScoreText {
    use std::fmt::Write;
    let mut out = ScoreText::new();
    if value.is_infinite() {
        out.extend(if value > 0.0 { b"inf" } else { b"-inf" });
        return out;
    }
    if value == 0.0 {
        out.extend(if value.is_sign_negative() {
            b"-0"
        } else {
            b"0"
        });
        return out;
    }
    // 17 significant digits, correctly rounded, as d.dddddddddddddddde<exp>.
    let mut scientific = ScoreText::new();
    let _ = write!(scientific, "{:.16e}", value.abs());
    let text = scientific.as_bytes();
    let e_at = text.iter().position(|&b| b == b'e').unwrap_or(text.len());
    let exp: i32 = std::str::from_utf8(text.get(e_at + 1..).unwrap_or(b"0"))
        .ok()
        .and_then(|e| e.parse().ok())
        .unwrap_or(0);
    let mut digits = [b'0'; 17];
    let mut count = 0;
    for &b in &text[..e_at] {
        if b.is_ascii_digit() && count < digits.len() {
            digits[count] = b;
            count += 1;
        }
    }
    let digits = &digits[..count.max(1)];
    if value < 0.0 {
        out.push(b'-');
    }
    if !(-4..17).contains(&exp) {
        let significant = trim_zeros(digits);
        out.push(significant.first().copied().unwrap_or(b'0'));
        if significant.len() > 1 {
            out.push(b'.');
            out.extend(&significant[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let _ = write!(out, "{:02}", exp.unsigned_abs());
    } else if exp >= 0 {
        let point = (exp as usize + 1).min(digits.len());
        out.extend(&digits[..point]);
        let fraction = trim_zeros(&digits[point..]);
        if !fraction.is_empty() {
            out.push(b'.');
            out.extend(fraction);
        }
    } else {
        out.extend(b"0.");
        for _ in 0..(-exp - 1) {
            out.push(b'0');
        }
        out.extend(trim_zeros(digits));
    }
    out
}

/// `digits` without its trailing zeros.
fn trim_zeros(digits: &[u8]) -> &[u8] {
    let end = digits.iter().rposition(|&d| d != b'0').map_or(0, |p| p + 1);
    &digits[..end]
}

/// Writes a score: a bulk string in RESP2, a double in RESP3. An integral score below 10^17
/// (what `%.17g` prints as plain digits) is formatted without allocating.
pub fn write_score(out: &mut Reply, value: f64) {
    let integral =
        value.fract() == 0.0 && value.abs() < 1e17 && !(value == 0.0 && value.is_sign_negative());
    let formatted;
    let int_text;
    let text: &[u8] = if integral {
        int_text = protocol::IntText::new(value as i64);
        int_text.as_bytes()
    } else {
        formatted = format_score(value);
        formatted.as_bytes()
    };
    match out.version {
        Version::Resp2 => out.bulk(text),
        Version::Resp3 => {
            out.buf.extend_from_slice(b",");
            out.buf.extend_from_slice(text);
            out.buf.extend_from_slice(b"\r\n");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Ranges.

/// One end of a score range: `1.5` (inclusive) or `(1.5` (exclusive).
#[derive(Clone, Copy, Debug)]
struct ScoreBound {
    value: f64,
    exclusive: bool,
}

impl ScoreBound {
    /// Parses a bound as Redis's `zslParseRange`: `strtod` on the text after an optional
    /// `(`, leading space allowed and no range check, nothing left over, not NaN.
    fn parse(arg: &[u8]) -> Result<ScoreBound, CmdError> {
        let (exclusive, text) = match arg.split_first() {
            Some((b'(', rest)) => (true, rest),
            _ => (false, arg),
        };
        // An empty text is 0 to `strtod` (nothing consumed, nothing left over).
        let value = if text.is_empty() {
            Some(0.0)
        } else if text
            .iter()
            .all(|c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r'))
        {
            None
        } else {
            strtod_whole(text, true).map(|(value, _)| value)
        };
        value
            .map(|value| ScoreBound { value, exclusive })
            .ok_or(BAD_SCORE_RANGE)
    }

    /// True if `score` lies below this bound taken as a minimum.
    fn below_min(self, score: f64) -> bool {
        if self.exclusive {
            score <= self.value
        } else {
            score < self.value
        }
    }

    /// True if `score` is within this bound taken as a maximum.
    fn within_max(self, score: f64) -> bool {
        if self.exclusive {
            score < self.value
        } else {
            score <= self.value
        }
    }
}

/// One end of a lex range.
#[derive(Clone, Copy, Debug)]
enum LexBound<'a> {
    /// `-`: below every member.
    Lowest,
    /// `+`: above every member.
    Highest,
    /// `[member`
    Inclusive(&'a [u8]),
    /// `(member`
    Exclusive(&'a [u8]),
}

impl<'a> LexBound<'a> {
    fn parse(arg: &'a [u8]) -> Result<LexBound<'a>, CmdError> {
        match arg {
            b"-" => Ok(LexBound::Lowest),
            b"+" => Ok(LexBound::Highest),
            [b'[', rest @ ..] => Ok(LexBound::Inclusive(rest)),
            [b'(', rest @ ..] => Ok(LexBound::Exclusive(rest)),
            _ => Err(BAD_LEX_RANGE),
        }
    }

    /// True if `member` lies below this bound taken as a minimum.
    fn below_min(self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(min) => member < min,
            LexBound::Exclusive(min) => member <= min,
        }
    }

    /// True if `member` is within this bound taken as a maximum.
    fn within_max(self, member: &[u8]) -> bool {
        match self {
            LexBound::Lowest => false,
            LexBound::Highest => true,
            LexBound::Inclusive(max) => member <= max,
            LexBound::Exclusive(max) => member < max,
        }
    }
}

/// The ascending ranks `lo..hi` of the members within a score range.
fn score_span(zset: &ZSet, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
    let lo = zset.count_leading(|_, score| min.below_min(score));
    let hi = zset.count_leading(|_, score| max.within_max(score));
    (lo, hi.max(lo))
}

/// The ascending ranks `lo..hi` of the members within a lex range.
fn lex_span(zset: &ZSet, min: LexBound<'_>, max: LexBound<'_>) -> (usize, usize) {
    let lo = zset.count_leading(|member, _| min.below_min(member));
    let hi = zset.count_leading(|member, _| max.within_max(member));
    (lo, hi.max(lo))
}

/// Redis's rank range: negative indexes count from the end; `None` if empty.
fn rank_span(len: usize, start: i64, end: i64) -> Option<(usize, usize)> {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let end = if end < 0 { len + end } else { end };
    if start > end || start >= len {
        return None;
    }
    let end = end.min(len - 1);
    Some((start as usize, end as usize + 1))
}

// ---------------------------------------------------------------------------------------
// Access helpers.

/// Runs `read` on the sorted set at `key` (`None` if absent) under a read lock; another
/// type is WRONGTYPE.
fn with_zset<R>(
    db: &Db,
    key: &[u8],
    now_ms: u64,
    read: impl FnOnce(Option<&ZSet>) -> R,
) -> Result<R, CmdError> {
    db.with_live(key, now_ms, |entry| match entry {
        Some(entry) => Ok(read(Some(entry.value.as_zset()?))),
        None => Ok(read(None)),
    })
}

/// The encoding thresholds in force.
fn limits(ctx: &Ctx<'_>) -> Limits {
    ctx.shared.store.limits().get()
}

/// Writes `[member, score]` entries: a flat array in RESP2 (with scores) or an array of
/// pairs in RESP3; without scores an array of members.
fn write_entries<'a>(
    out: &mut Reply,
    len: usize,
    entries: impl Iterator<Item = (&'a [u8], f64)>,
    with_scores: bool,
) {
    let nested = with_scores && out.version == Version::Resp3;
    out.array(if with_scores && !nested { len * 2 } else { len });
    for (member, score) in entries {
        if nested {
            out.array(2);
        }
        out.bulk(member);
        if with_scores {
            write_score(out, score);
        }
    }
}

// ---------------------------------------------------------------------------------------
// ZADD, ZINCRBY.

/// What ZADD did to one member.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AddOutcome {
    /// A new member.
    Added,
    /// An existing member got another score.
    Updated,
    /// Processed, score unchanged.
    Same,
    /// Skipped by NX, XX, GT or LT.
    Skipped,
}

/// ZADD's options.
#[derive(Clone, Copy, Default)]
struct AddFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    incr: bool,
    ch: bool,
}

/// Adds or updates one member as Redis's `zsetAdd`; returns what happened and the member's
/// score afterwards.
fn add_one(
    zset: &mut ZSet,
    member: &[u8],
    score: f64,
    flags: AddFlags,
    limits: &Limits,
) -> Result<(AddOutcome, f64), CmdError> {
    match zset.score(member) {
        Some(current) => {
            if flags.nx {
                return Ok((AddOutcome::Skipped, current));
            }
            let mut new = score;
            if flags.incr {
                new += current;
                if new.is_nan() {
                    return Err(NAN_RESULT);
                }
            }
            if (flags.gt && new <= current) || (flags.lt && new >= current) {
                return Ok((AddOutcome::Skipped, current));
            }
            if new == current {
                return Ok((AddOutcome::Same, current));
            }
            let score = Score::new(new).ok_or(NAN_RESULT)?;
            zset.add(member, score, limits);
            Ok((AddOutcome::Updated, new))
        }
        None => {
            if flags.xx {
                return Ok((AddOutcome::Skipped, score));
            }
            let valid = Score::new(score).ok_or(NAN_RESULT)?;
            zset.add(member, valid, limits);
            Ok((AddOutcome::Added, score))
        }
    }
}

/// ZADD and ZINCRBY: `scores_at` is where the score/member pairs start.
fn zadd_generic(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    mut flags: AddFlags,
    mut scores_at: usize,
) -> Result<(), CmdError> {
    if !flags.incr {
        while scores_at < args.len() {
            let option = &args[scores_at];
            if is(option, "NX") {
                flags.nx = true;
            } else if is(option, "XX") {
                flags.xx = true;
            } else if is(option, "CH") {
                flags.ch = true;
            } else if is(option, "INCR") {
                flags.incr = true;
            } else if is(option, "GT") {
                flags.gt = true;
            } else if is(option, "LT") {
                flags.lt = true;
            } else {
                break;
            }
            scores_at += 1;
        }
    }
    let elements = args.len() - scores_at;
    if elements % 2 == 1 || elements == 0 {
        return Err(errors::SYNTAX);
    }
    let pairs = elements / 2;
    if flags.nx && flags.xx {
        return Err(CmdError::new(
            "ERR XX and NX options at the same time are not compatible",
        ));
    }
    if (flags.gt || flags.lt) && flags.nx || (flags.gt && flags.lt) {
        return Err(CmdError::new(
            "ERR GT, LT, and/or NX options at the same time are not compatible",
        ));
    }
    if flags.incr && pairs > 1 {
        return Err(CmdError::new(
            "ERR INCR option supports a single increment-element pair",
        ));
    }
    // Every score is checked before anything changes (parsed again as it is applied, which
    // costs less than collecting them).
    for i in 0..pairs {
        parse_score(&args[scores_at + 2 * i]).ok_or(errors::NOT_FLOAT)?;
    }
    let limits = limits(ctx);
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let (mut added, mut updated, mut processed, mut last) = (0usize, 0usize, 0usize, 0.0);
    let mut failure = None;
    {
        let mut created = None;
        let zset = match shard.get_mut(hash, key, now) {
            Some(entry) => Some(entry.value.as_zset_mut()?),
            None if flags.xx => None,
            None => Some(created.insert(ZSet::new())),
        };
        if let Some(zset) = zset {
            for i in 0..pairs {
                let score = parse_score(&args[scores_at + 2 * i]).unwrap_or(0.0);
                let member = &args[scores_at + 2 * i + 1];
                match add_one(zset, member, score, flags, &limits) {
                    Ok((outcome, score)) => {
                        added += usize::from(outcome == AddOutcome::Added);
                        updated += usize::from(outcome == AddOutcome::Updated);
                        processed += usize::from(outcome != AddOutcome::Skipped);
                        last = score;
                    }
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
            }
        }
        if let Some(zset) = created {
            if !zset.is_empty() {
                shard.set(hash, key, Value::zset(zset), None, now);
            }
        }
    }
    if added + updated > 0 {
        shard.propagate_named(&args[0], args.slice(1..).iter());
    }
    drop(shard);
    if added + updated > 0 {
        let event = if flags.incr { "zincr" } else { "zadd" };
        ctx.notify(notify::ZSET, event, key);
    }
    if let Some(err) = failure {
        return Err(err);
    }
    if flags.incr {
        if processed > 0 {
            write_score(ctx.out, last);
        } else {
            ctx.out.null();
        }
    } else {
        ctx.out
            .count(if flags.ch { added + updated } else { added });
    }
    Ok(())
}

/// `ZADD key [NX | XX] [GT | LT] [CH] [INCR] score member [score member ...]`
pub fn zadd(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    zadd_generic(ctx, args, AddFlags::default(), 2)
}

/// ZINCRBY key increment member: ZADD INCR; replies with the new score.
pub fn zincrby(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let flags = AddFlags {
        incr: true,
        ..AddFlags::default()
    };
    zadd_generic(ctx, args, flags, 2)
}

// ---------------------------------------------------------------------------------------
// Simple reads.

/// ZCARD key
pub fn zcard(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let len = with_zset(ctx.db(), &args[1], ctx.now_ms, |z| z.map_or(0, ZSet::len))?;
    ctx.out.count(len);
    Ok(())
}

/// ZSCORE key member: a double, or nil.
pub fn zscore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let score = with_zset(ctx.db(), &args[1], ctx.now_ms, |z| {
        z.and_then(|z| z.score(&args[2]))
    })?;
    match score {
        Some(score) => write_score(ctx.out, score),
        None => ctx.out.null(),
    }
    Ok(())
}

/// `ZMSCORE key member [member ...]`: a double or nil per member.
pub fn zmscore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_zset(db, &args[1], now, |zset| {
        let members = args.slice(2..);
        out.array(members.len());
        for member in members.iter() {
            match zset.and_then(|z| z.score(member)) {
                Some(score) => write_score(out, score),
                None => out.null(),
            }
        }
    })
}

/// ZRANK and ZREVRANK: `key member [WITHSCORE]`.
fn rank_generic(ctx: &mut Ctx<'_>, args: Argv<'_>, reverse: bool) -> Result<(), CmdError> {
    if args.len() > 4 {
        return Err(CmdError::owned(format!(
            "ERR wrong number of arguments for '{}' command",
            if reverse { "zrevrank" } else { "zrank" }
        )));
    }
    let with_score = match args.get(3) {
        None => false,
        Some(option) if is(option, "WITHSCORE") => true,
        Some(_) => return Err(errors::SYNTAX),
    };
    let found = with_zset(ctx.db(), &args[1], ctx.now_ms, |zset| {
        zset.and_then(|z| {
            let (rank, score) = z.rank(&args[2])?;
            Some((if reverse { z.len() - 1 - rank } else { rank }, score))
        })
    })?;
    match (found, with_score) {
        (Some((rank, _)), false) => ctx.out.count(rank),
        (Some((rank, score)), true) => {
            ctx.out.array(2);
            ctx.out.count(rank);
            write_score(ctx.out, score);
        }
        (None, false) => ctx.out.null(),
        (None, true) => ctx.out.null_array(),
    }
    Ok(())
}

/// `ZRANK key member [WITHSCORE]`
pub fn zrank(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    rank_generic(ctx, args, false)
}

/// `ZREVRANK key member [WITHSCORE]`
pub fn zrevrank(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    rank_generic(ctx, args, true)
}

/// ZCOUNT key min max: members with a score in the range.
pub fn zcount(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let min = ScoreBound::parse(&args[2])?;
    let max = ScoreBound::parse(&args[3])?;
    let count = with_zset(ctx.db(), &args[1], ctx.now_ms, |zset| {
        zset.map_or(0, |z| {
            let (lo, hi) = score_span(z, min, max);
            hi - lo
        })
    })?;
    ctx.out.count(count);
    Ok(())
}

/// ZLEXCOUNT key min max: members in the lex range.
pub fn zlexcount(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let min = LexBound::parse(&args[2])?;
    let max = LexBound::parse(&args[3])?;
    let count = with_zset(ctx.db(), &args[1], ctx.now_ms, |zset| {
        zset.map_or(0, |z| {
            let (lo, hi) = lex_span(z, min, max);
            hi - lo
        })
    })?;
    ctx.out.count(count);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// The ZRANGE family.

/// How a range is given.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RangeKind {
    Rank,
    Score,
    Lex,
}

/// A parsed range request.
enum Range<'a> {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound<'a>, LexBound<'a>),
}

/// A ZRANGE-family request, parsed and validated.
struct RangeRequest<'a> {
    range: Range<'a>,
    reverse: bool,
    with_scores: bool,
    /// LIMIT offset count (count < 0: all).
    offset: i64,
    count: i64,
}

impl<'a> RangeRequest<'a> {
    /// Parses `key min max [options]` starting at `key_at`, as Redis's
    /// `zrangeGenericCommand`: options first, then the conflicts, then the range.
    fn parse(
        args: Argv<'a>,
        key_at: usize,
        store: bool,
        kind: Option<RangeKind>,
        reverse: Option<bool>,
    ) -> Result<RangeRequest<'a>, CmdError> {
        let (mut kind, mut reverse) = (kind, reverse);
        let fixed_kind = kind.is_some();
        let fixed_direction = reverse.is_some();
        let mut with_scores = false;
        let (mut offset, mut count) = (0i64, -1i64);
        let mut i = key_at + 3;
        while i < args.len() {
            let option = &args[i];
            let left = args.len() - i - 1;
            if !store && is(option, "WITHSCORES") {
                with_scores = true;
            } else if is(option, "LIMIT") && left >= 2 {
                offset = arg_i64(&args[i + 1])?;
                count = arg_i64(&args[i + 2])?;
                i += 2;
            } else if !fixed_direction && is(option, "REV") {
                reverse = Some(true);
            } else if !fixed_kind && kind.is_none() && is(option, "BYLEX") {
                kind = Some(RangeKind::Lex);
            } else if !fixed_kind && kind.is_none() && is(option, "BYSCORE") {
                kind = Some(RangeKind::Score);
            } else {
                return Err(errors::SYNTAX);
            }
            i += 1;
        }
        let reverse = reverse.unwrap_or(false);
        let kind = kind.unwrap_or(RangeKind::Rank);
        if count != -1 && kind == RangeKind::Rank {
            return Err(CmdError::new(
                "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
            ));
        }
        if with_scores && kind == RangeKind::Lex {
            return Err(CmdError::new(
                "ERR syntax error, WITHSCORES not supported in combination with BYLEX",
            ));
        }
        let (mut min_at, mut max_at) = (key_at + 1, key_at + 2);
        if reverse && kind != RangeKind::Rank {
            std::mem::swap(&mut min_at, &mut max_at);
        }
        let range = match kind {
            RangeKind::Rank => Range::Rank(arg_i64(&args[min_at])?, arg_i64(&args[max_at])?),
            RangeKind::Score => Range::Score(
                ScoreBound::parse(&args[min_at])?,
                ScoreBound::parse(&args[max_at])?,
            ),
            RangeKind::Lex => Range::Lex(
                LexBound::parse(args.arg(min_at))?,
                LexBound::parse(args.arg(max_at))?,
            ),
        };
        Ok(RangeRequest {
            range,
            reverse,
            with_scores,
            offset,
            count,
        })
    }

    /// The selected members in reply order.
    fn select<'z>(&self, zset: &'z ZSet) -> Vec<(&'z [u8], f64)> {
        let (lo, hi) = match self.range {
            Range::Rank(start, end) => {
                let Some((lo, hi)) = rank_span(zset.len(), start, end) else {
                    return Vec::new();
                };
                if self.reverse {
                    let len = zset.len();
                    let (lo, hi) = (len - hi, len - lo);
                    return zset.range(lo, hi).into_iter().rev().collect();
                }
                return zset.range(lo, hi);
            }
            Range::Score(min, max) => score_span(zset, min, max),
            Range::Lex(min, max) => lex_span(zset, min, max),
        };
        if self.offset < 0 || lo >= hi {
            return Vec::new();
        }
        let skip = usize::try_from(self.offset).unwrap_or(usize::MAX);
        let take = usize::try_from(self.count).unwrap_or(usize::MAX);
        let span = hi - lo;
        if skip >= span {
            return Vec::new();
        }
        let take = take.min(span - skip);
        if self.reverse {
            zset.range(hi - skip - take, hi - skip)
                .into_iter()
                .rev()
                .collect()
        } else {
            zset.range(lo + skip, lo + skip + take)
        }
    }
}

/// ZRANGE and its older forms: replies with the selected members.
fn range_reply(
    ctx: &mut Ctx<'_>,
    args: Argv<'_>,
    kind: Option<RangeKind>,
    reverse: Option<bool>,
) -> Result<(), CmdError> {
    let request = RangeRequest::parse(args, 1, false, kind, reverse)?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_zset(db, &args[1], now, |zset| {
        let selected = zset.map(|z| request.select(z)).unwrap_or_default();
        write_entries(
            out,
            selected.len(),
            selected.into_iter(),
            request.with_scores,
        );
    })
}

/// `ZRANGE key start stop [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]`
pub fn zrange(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, None, None)
}

/// `ZREVRANGE key start stop [WITHSCORES]`
pub fn zrevrange(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, Some(RangeKind::Rank), Some(true))
}

/// `ZRANGEBYSCORE key min max [WITHSCORES] [LIMIT offset count]`
pub fn zrangebyscore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, Some(RangeKind::Score), Some(false))
}

/// `ZREVRANGEBYSCORE key max min [WITHSCORES] [LIMIT offset count]`
pub fn zrevrangebyscore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, Some(RangeKind::Score), Some(true))
}

/// `ZRANGEBYLEX key min max [LIMIT offset count]`
pub fn zrangebylex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, Some(RangeKind::Lex), Some(false))
}

/// `ZREVRANGEBYLEX key max min [LIMIT offset count]`
pub fn zrevrangebylex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    range_reply(ctx, args, Some(RangeKind::Lex), Some(true))
}

/// Stores `entries` at `dst` (replacing whatever is there), or deletes `dst` when there is
/// none; the result takes the compact encoding when it fits, as Redis's store commands do.
/// Returns true if the keyspace changed (something stored, or `dst` deleted).
fn store_result(
    shard: &mut Shard,
    hash: u64,
    dst: &[u8],
    entries: Vec<(Vec<u8>, f64)>,
    limits: &Limits,
    now: u64,
) -> bool {
    if entries.is_empty() {
        return shard.delete(hash, dst, now);
    }
    let mut zset = ZSet::new();
    for (member, score) in entries {
        if let Some(score) = Score::new(score) {
            zset.add(&member, score, limits);
        }
    }
    shard.set(hash, dst, Value::zset(zset), None, now);
    true
}

/// A store command's notification: `event` when it stored something, `del` when its empty
/// result removed the destination, nothing when the destination was already missing.
fn notify_stored(ctx: &Ctx<'_>, event: &str, dst: &[u8], stored: usize, changed: bool) {
    if stored > 0 {
        ctx.notify(notify::ZSET, event, dst);
    } else if changed {
        ctx.notify(notify::GENERIC, "del", dst);
    }
}

/// `ZRANGESTORE dst src min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]`
pub fn zrangestore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let request = RangeRequest::parse(args, 2, true, None, None)?;
    let limits = limits(ctx);
    let (dst, src, now) = (&args[1], &args[2], ctx.now_ms);
    let mut locked = ctx.db().lock_keys([dst, src]);
    let selected: Vec<(Vec<u8>, f64)> = {
        let (shard, hash) = locked.shard(src).ok_or(errors::SYNTAX)?;
        match shard.get_read(hash, src, now) {
            Some(entry) => {
                let zset = entry.value.as_zset()?;
                request
                    .select(zset)
                    .into_iter()
                    .map(|(m, s)| (m.to_vec(), s))
                    .collect()
            }
            None => Vec::new(),
        }
    };
    let stored = selected.len();
    let (shard, hash) = locked.shard(dst).ok_or(errors::SYNTAX)?;
    let changed = store_result(shard, hash, dst, selected, &limits, now);
    if changed {
        locked.propagate_named(b"ZRANGESTORE", args.slice(1..).iter());
    }
    drop(locked);
    notify_stored(ctx, "zrangestore", dst, stored, changed);
    ctx.out.count(stored);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Removal.

/// A removal's notifications: `event` if it removed members, then `del` if it emptied (and
/// so deleted) the key.
fn notify_removed(ctx: &Ctx<'_>, event: &str, key: &[u8], removed: usize, emptied: bool) {
    if removed > 0 {
        ctx.notify(notify::ZSET, event, key);
    }
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// `ZREM key member [member ...]`
pub fn zrem(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let zset = entry.value.as_zset_mut()?;
    let mut removed = 0usize;
    for member in args.slice(2..).iter() {
        removed += usize::from(zset.remove(member).is_some());
        if zset.is_empty() {
            break;
        }
    }
    let emptied = zset.is_empty();
    if emptied {
        shard.delete(hash, key, now);
    }
    if removed > 0 {
        shard.propagate_named(b"ZREM", args.slice(1..).iter());
    }
    drop(shard);
    notify_removed(ctx, "zrem", key, removed, emptied);
    ctx.out.count(removed);
    Ok(())
}

/// ZREMRANGEBYRANK, ZREMRANGEBYSCORE and ZREMRANGEBYLEX: removes the members of a range.
fn remove_range(ctx: &mut Ctx<'_>, args: Argv<'_>, kind: RangeKind) -> Result<(), CmdError> {
    let range = match kind {
        RangeKind::Rank => Range::Rank(arg_i64(&args[2])?, arg_i64(&args[3])?),
        RangeKind::Score => {
            Range::Score(ScoreBound::parse(&args[2])?, ScoreBound::parse(&args[3])?)
        }
        RangeKind::Lex => Range::Lex(LexBound::parse(args.arg(2))?, LexBound::parse(args.arg(3))?),
    };
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    let Some(entry) = shard.get_mut(hash, key, now) else {
        drop(shard);
        ctx.out.int(0);
        return Ok(());
    };
    let zset = entry.value.as_zset_mut()?;
    let (lo, hi) = match range {
        Range::Rank(start, end) => rank_span(zset.len(), start, end).unwrap_or((0, 0)),
        Range::Score(min, max) => score_span(zset, min, max),
        Range::Lex(min, max) => lex_span(zset, min, max),
    };
    let removed = if lo < hi {
        zset.remove_range(lo, hi)
    } else {
        0
    };
    let emptied = zset.is_empty();
    if emptied {
        shard.delete(hash, key, now);
    }
    if removed > 0 {
        shard.propagate_named(&args[0], args.slice(1..).iter());
    }
    drop(shard);
    let event = match kind {
        RangeKind::Rank => "zremrangebyrank",
        RangeKind::Score => "zremrangebyscore",
        RangeKind::Lex => "zremrangebylex",
    };
    notify_removed(ctx, event, key, removed, emptied);
    ctx.out.count(removed);
    Ok(())
}

/// ZREMRANGEBYRANK key start stop
pub fn zremrangebyrank(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    remove_range(ctx, args, RangeKind::Rank)
}

/// ZREMRANGEBYSCORE key min max
pub fn zremrangebyscore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    remove_range(ctx, args, RangeKind::Score)
}

/// ZREMRANGEBYLEX key min max
pub fn zremrangebylex(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    remove_range(ctx, args, RangeKind::Lex)
}

// ---------------------------------------------------------------------------------------
// Pops (shared with the blocking commands: see the module documentation).

/// Members popped, with their scores, in pop order.
pub type Popped = Vec<(Vec<u8>, f64)>;

/// Which end of a sorted set a pop takes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The lowest scores (ZPOPMIN).
    Min,
    /// The highest scores (ZPOPMAX).
    Max,
}

impl Side {
    /// `MIN` or `MAX`, any case.
    pub fn parse(arg: &[u8]) -> Option<Side> {
        if is(arg, "MIN") {
            Some(Side::Min)
        } else if is(arg, "MAX") {
            Some(Side::Max)
        } else {
            None
        }
    }

    /// The pop command this side propagates as.
    pub fn command(self) -> &'static [u8] {
        match self {
            Side::Min => b"ZPOPMIN",
            Side::Max => b"ZPOPMAX",
        }
    }

    /// The keyspace notification of a pop from this side.
    pub fn event(self) -> &'static str {
        match self {
            Side::Min => "zpopmin",
            Side::Max => "zpopmax",
        }
    }
}

/// A pop's notifications, sent after the lock is dropped: `zpopmin`/`zpopmax` if it took
/// something, then `del` if it emptied (and so deleted) the key.
pub fn notify_popped(ctx: &Ctx<'_>, key: &[u8], side: Side, popped: usize, emptied: bool) {
    if popped > 0 {
        ctx.notify(notify::ZSET, side.event(), key);
    }
    if emptied {
        ctx.notify(notify::GENERIC, "del", key);
    }
}

/// Pops up to `count` members from the sorted set at `key` in `shard` (write-locked by the
/// caller), deleting the key if emptied, and propagates `ZPOPMIN|ZPOPMAX key count` when
/// something was popped. Returns the members popped and whether the key was emptied
/// (for [`notify_popped`]). `Ok(None)`: no such key; `Err`: the key holds another type.
pub fn pop_locked(
    shard: &mut Shard,
    hash: u64,
    key: &[u8],
    side: Side,
    count: usize,
    now_ms: u64,
) -> Result<Option<(Popped, bool)>, CmdError> {
    let Some(entry) = shard.get_mut(hash, key, now_ms) else {
        return Ok(None);
    };
    let zset = entry.value.as_zset_mut()?;
    let len = zset.len();
    let taken = count.min(len);
    let (start, end) = match side {
        Side::Min => (0, taken),
        Side::Max => (len - taken, len),
    };
    let mut popped: Popped = zset
        .range(start, end)
        .into_iter()
        .map(|(member, score)| (member.to_vec(), score))
        .collect();
    if side == Side::Max {
        popped.reverse();
    }
    zset.remove_range(start, end);
    let emptied = zset.is_empty();
    if emptied {
        shard.delete(hash, key, now_ms);
    }
    if !popped.is_empty() {
        let count = protocol::IntText::new(i64::try_from(count).unwrap_or(i64::MAX));
        shard.propagate(&[side.command(), key, count.as_bytes()]);
    }
    Ok(Some((popped, emptied)))
}

/// ZPOPMIN/ZPOPMAX's reply: with a count, a flat `member score ...` array in RESP2 and an
/// array of `[member, score]` pairs in RESP3; without one, a flat array in both.
pub fn write_popped(out: &mut Reply, popped: &[(Vec<u8>, f64)], counted: bool) {
    let nested = counted && out.version == Version::Resp3;
    out.array(if nested {
        popped.len()
    } else {
        popped.len() * 2
    });
    for (member, score) in popped {
        if nested {
            out.array(2);
        }
        out.bulk(member);
        write_score(out, *score);
    }
}

/// ZMPOP's (and BZMPOP's) reply: `[key, [[member, score], ...]]`.
pub fn write_mpop_reply(out: &mut Reply, key: &[u8], popped: &[(Vec<u8>, f64)]) {
    out.array(2);
    out.bulk(key);
    out.array(popped.len());
    for (member, score) in popped {
        out.array(2);
        out.bulk(member);
        write_score(out, *score);
    }
}

/// BZPOPMIN/BZPOPMAX's reply: `[key, member, score]`.
pub fn write_key_member_score(out: &mut Reply, key: &[u8], member: &[u8], score: f64) {
    out.array(3);
    out.bulk(key);
    out.bulk(member);
    write_score(out, score);
}

/// `ZPOPMIN/ZPOPMAX key [count]`
fn pop_generic(ctx: &mut Ctx<'_>, args: Argv<'_>, side: Side) -> Result<(), CmdError> {
    if args.len() > 3 {
        return Err(errors::SYNTAX);
    }
    let counted = args.len() == 3;
    let count = match args.get(2) {
        Some(arg) => {
            let n = parse_i64(arg).ok_or(NOT_POSITIVE)?;
            usize::try_from(n).map_err(|_| NOT_POSITIVE)?
        }
        None => 1,
    };
    let (key, now) = (&args[1], ctx.now_ms);
    let (mut shard, hash) = ctx.db().lock(key);
    // A count of 0 pops nothing and propagates nothing (the type is still checked).
    let (popped, emptied) = if count == 0 {
        if let Some(entry) = shard.get_mut(hash, key, now) {
            entry.value.as_zset()?;
        }
        (Vec::new(), false)
    } else {
        pop_locked(&mut shard, hash, key, side, count, now)?.unwrap_or_default()
    };
    drop(shard);
    notify_popped(ctx, key, side, popped.len(), emptied);
    write_popped(ctx.out, &popped, counted);
    Ok(())
}

/// `ZPOPMIN key [count]`
pub fn zpopmin(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    pop_generic(ctx, args, Side::Min)
}

/// `ZPOPMAX key [count]`
pub fn zpopmax(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    pop_generic(ctx, args, Side::Max)
}

/// The `numkeys key [key ...] MIN|MAX [COUNT count]` arguments of ZMPOP and BZMPOP.
#[derive(Clone, Copy, Debug)]
pub struct MpopArgs {
    /// Index of the first key in the argument vector.
    pub first_key: usize,
    /// Number of keys.
    pub numkeys: usize,
    /// Which end to pop.
    pub side: Side,
    /// How many members to pop at most (1 without COUNT).
    pub count: usize,
}

impl MpopArgs {
    /// Parses the tail starting with `numkeys` at `numkeys_at`, with Redis's errors.
    pub fn parse(args: Argv<'_>, numkeys_at: usize) -> Result<MpopArgs, CmdError> {
        let numkeys = parse_i64(&args[numkeys_at])
            .filter(|&n| n > 0)
            .ok_or(CmdError::new("ERR numkeys should be greater than 0"))?;
        let first_key = numkeys_at + 1;
        let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
        // Keys, then the side.
        let side_at = first_key
            .checked_add(numkeys)
            .filter(|&at| at < args.len())
            .ok_or(errors::SYNTAX)?;
        let side = Side::parse(&args[side_at]).ok_or(errors::SYNTAX)?;
        let mut count = None;
        let mut i = side_at + 1;
        while i < args.len() {
            if count.is_none() && is(&args[i], "COUNT") && i + 1 < args.len() {
                let n = parse_i64(&args[i + 1])
                    .filter(|&n| n > 0)
                    .ok_or(CmdError::new("ERR count should be greater than 0"))?;
                count = Some(usize::try_from(n).unwrap_or(usize::MAX));
                i += 2;
            } else {
                return Err(errors::SYNTAX);
            }
        }
        Ok(MpopArgs {
            first_key,
            numkeys,
            side,
            count: count.unwrap_or(1),
        })
    }

    /// The keys, in argument order.
    pub fn keys<'a>(&self, args: Argv<'a>) -> impl Iterator<Item = &'a [u8]> + Clone + 'a {
        let range = self.first_key..self.first_key + self.numkeys;
        range.map(move |i| args.arg(i))
    }
}

/// `ZMPOP numkeys key [key ...] MIN|MAX [COUNT count]`: pops from the first non-empty key.
pub fn zmpop(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let parsed = MpopArgs::parse(args, 1)?;
    let now = ctx.now_ms;
    let mut locked = ctx.db().lock_keys(parsed.keys(args));
    for key in parsed.keys(args) {
        let (shard, hash) = locked.shard(key).ok_or(errors::SYNTAX)?;
        if let Some((popped, emptied)) =
            pop_locked(shard, hash, key, parsed.side, parsed.count, now)?
        {
            if !popped.is_empty() {
                drop(locked);
                notify_popped(ctx, key, parsed.side, popped.len(), emptied);
                write_mpop_reply(ctx.out, key, &popped);
                return Ok(());
            }
        }
    }
    drop(locked);
    ctx.out.null_array();
    Ok(())
}

// ---------------------------------------------------------------------------------------
// ZRANDMEMBER and ZSCAN.

/// `ZRANDMEMBER key [count [WITHSCORES]]`
///
/// Without a count: one random member, or nil. With a count `n > 0`: `min(n, len)` distinct
/// members; `n < 0`: `|n|` members drawn independently; 0: none. The count and option are
/// checked before the key. WITHSCORES replies a flat array in RESP2 and `[member, score]`
/// pairs in RESP3.
pub fn zrandmember(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let (db, now) = (ctx.db(), ctx.now_ms);
    if args.len() == 2 {
        let out = &mut *ctx.out;
        return with_zset(db, &args[1], now, |zset| {
            let picked = zset.and_then(|z| z.get_by_rank(Random::new().below(z.len())));
            match picked {
                Some((member, _)) => out.bulk(member),
                None => out.null(),
            }
        });
    }
    let count = parse_i64(&args[2]).ok_or(errors::NOT_INTEGER)?;
    if count == i64::MIN {
        return Err(CmdError::new(
            "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
        ));
    }
    let with_scores = match args.len() {
        3 => false,
        4 if is(&args[3], "WITHSCORES") => true,
        _ => return Err(errors::SYNTAX),
    };
    let out_of_range = CmdError::new("ERR value is out of range");
    if with_scores && !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&count) {
        return Err(out_of_range);
    }
    if count < 0 && count.unsigned_abs() > MAX_REPEATED_PICKS {
        return Err(out_of_range);
    }
    let out = &mut *ctx.out;
    with_zset(db, &args[1], now, |zset| {
        let Some(zset) = zset else {
            out.array(0);
            return;
        };
        let len = zset.len();
        let wanted = usize::try_from(count.unsigned_abs()).unwrap_or(usize::MAX);
        let mut random = Random::new();
        let picks: Vec<(&[u8], f64)> = if count < 0 {
            (0..wanted)
                .filter_map(|_| zset.get_by_rank(random.below(len)))
                .collect()
        } else if wanted >= len {
            zset.iter().collect()
        } else {
            // Distinct random ranks: a partial shuffle of the ranks.
            let mut ranks: Vec<usize> = if wanted.saturating_mul(3) > len {
                (0..len).collect()
            } else {
                Vec::new()
            };
            if ranks.is_empty() {
                let mut chosen = std::collections::HashSet::with_capacity(wanted);
                while chosen.len() < wanted {
                    let rank = random.below(len);
                    if chosen.insert(rank) {
                        ranks.push(rank);
                    }
                }
            } else {
                for i in 0..wanted {
                    let j = i + random.below(len - i);
                    ranks.swap(i, j);
                }
                ranks.truncate(wanted);
            }
            ranks
                .into_iter()
                .filter_map(|rank| zset.get_by_rank(rank))
                .collect()
        };
        write_entries(out, picks.len(), picks.into_iter(), with_scores);
    })
}

/// `ZSCAN key cursor [MATCH pattern] [COUNT count]`: `[next cursor, [member, score, ...]]`,
/// scores as bulk strings in both protocols (as Redis). A compact sorted set comes back
/// whole with cursor 0; a larger one a segment of its member index per step, with HSCAN's
/// guarantee (every member present for the whole walk is returned).
pub fn zscan(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    let cursor = parse_cursor(&args[2])?;
    let (db, now) = (ctx.db(), ctx.now_ms);
    let out = &mut *ctx.out;
    with_zset(db, &args[1], now, |zset| {
        let Some(zset) = zset else {
            reply_empty_scan(out);
            return Ok(());
        };
        let ScanOptions { pattern, count } = ScanOptions::parse(args)?;
        let mut found: Vec<(&[u8], f64)> = Vec::new();
        let (mut visited, mut steps) = (0usize, 0usize);
        let max_steps = count.saturating_mul(10);
        let mut next = cursor;
        loop {
            next = zset.scan(next, |member, score| {
                visited += 1;
                if pattern.is_none_or(|p| glob_match(p, member)) {
                    found.push((member, score));
                }
            });
            steps += 1;
            if next == 0 || visited >= count || steps >= max_steps {
                break;
            }
        }
        out.array(2);
        out.bulk_int(i64::try_from(next).unwrap_or(0));
        out.array(found.len() * 2);
        for (member, score) in found {
            out.bulk(member);
            out.bulk(format_score(score).as_bytes());
        }
        Ok(())
    })?
}

// ---------------------------------------------------------------------------------------
// ZUNION, ZINTER, ZDIFF, their STORE forms, ZINTERCARD.

/// The operation of a multi-key command.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetOp {
    Union,
    Inter,
    Diff,
}

/// How scores of a member found in several inputs combine.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a NaN sum (`inf + -inf`) becomes 0.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// An input of a multi-key command: a sorted set, or a set (every member scoring 1).
#[derive(Clone, Copy)]
enum Source<'a> {
    Sorted(&'a ZSet),
    Plain(&'a Set),
}

/// An input owned (a clone of the value: one pointer per part), for the STORE forms, which
/// hold the shards mutably.
enum OwnedSource {
    Sorted(ZSet),
    Plain(Set),
}

impl OwnedSource {
    fn from_value(value: &Value) -> Result<OwnedSource, CmdError> {
        match value {
            Value::ZSet(zset) => Ok(OwnedSource::Sorted(zset.clone())),
            Value::Set(set) => Ok(OwnedSource::Plain((**set).clone())),
            _ => Err(errors::WRONGTYPE),
        }
    }

    fn as_source(&self) -> Source<'_> {
        match self {
            OwnedSource::Sorted(zset) => Source::Sorted(zset),
            OwnedSource::Plain(set) => Source::Plain(set),
        }
    }
}

impl<'a> Source<'a> {
    fn from_value(value: &'a Value) -> Result<Source<'a>, CmdError> {
        match value {
            Value::ZSet(zset) => Ok(Source::Sorted(zset)),
            Value::Set(set) => Ok(Source::Plain(set)),
            _ => Err(errors::WRONGTYPE),
        }
    }

    fn len(self) -> usize {
        match self {
            Source::Sorted(zset) => zset.len(),
            Source::Plain(set) => set.len(),
        }
    }

    fn score(self, member: &[u8]) -> Option<f64> {
        match self {
            Source::Sorted(zset) => zset.score(member),
            Source::Plain(set) => set.contains(member).then_some(1.0),
        }
    }

    /// Visits every member with its score (1 for a set's members). A sorted set's members
    /// are lent; a set's are copied, since an intset member exists only as a number.
    fn for_each(self, mut visit: impl FnMut(Cow<'a, [u8]>, f64)) {
        match self {
            Source::Sorted(zset) => zset.iter().for_each(|(m, s)| visit(Cow::Borrowed(m), s)),
            Source::Plain(set) => set.iter().for_each(|m| visit(Cow::Owned(m.to_vec()), 1.0)),
        }
    }
}

/// The options after the keys.
struct SetOpOptions {
    weights: Vec<f64>,
    aggregate: Aggregate,
    with_scores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: usize,
}

/// Where the keys are: `numkeys` at `numkeys_at`, keys after it. Checks as Redis does,
/// before any key is read.
fn set_op_keys(args: Argv<'_>, numkeys_at: usize) -> Result<(usize, usize), CmdError> {
    let numkeys = arg_i64(&args[numkeys_at])?;
    if numkeys < 1 {
        return Err(CmdError::owned(format!(
            "ERR at least 1 input key is needed for '{}' command",
            String::from_utf8_lossy(&args[0]).to_ascii_lowercase()
        )));
    }
    let available = args.len() - numkeys_at - 1;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys > available {
        return Err(errors::SYNTAX);
    }
    Ok((numkeys_at + 1, numkeys))
}

/// Parses the options after the keys (read after the keys' types were checked, as Redis).
fn set_op_options(
    args: Argv<'_>,
    mut i: usize,
    numkeys: usize,
    op: SetOp,
    store: bool,
    card: bool,
) -> Result<SetOpOptions, CmdError> {
    let mut options = SetOpOptions {
        weights: vec![1.0; numkeys],
        aggregate: Aggregate::Sum,
        with_scores: false,
        limit: 0,
    };
    while i < args.len() {
        let remaining = args.len() - i;
        let option = &args[i];
        if op != SetOp::Diff && !card && remaining > numkeys && is(option, "WEIGHTS") {
            for k in 0..numkeys {
                options.weights[k] = parse_score(&args[i + 1 + k])
                    .ok_or(CmdError::new("ERR weight value is not a float"))?;
            }
            i += 1 + numkeys;
        } else if op != SetOp::Diff && !card && remaining >= 2 && is(option, "AGGREGATE") {
            let name = &args[i + 1];
            options.aggregate = if is(name, "SUM") {
                Aggregate::Sum
            } else if is(name, "MIN") {
                Aggregate::Min
            } else if is(name, "MAX") {
                Aggregate::Max
            } else {
                return Err(errors::SYNTAX);
            };
            i += 2;
        } else if !store && !card && is(option, "WITHSCORES") {
            options.with_scores = true;
            i += 1;
        } else if card && remaining >= 2 && is(option, "LIMIT") {
            let limit_error = CmdError::new("ERR LIMIT can't be negative");
            let limit = parse_i64(&args[i + 1]).ok_or(limit_error.clone())?;
            options.limit = usize::try_from(limit).map_err(|_| limit_error)?;
            i += 2;
        } else {
            return Err(errors::SYNTAX);
        }
    }
    Ok(options)
}

/// A weighted score: a NaN product (`inf * 0`) counts as 0, as in Redis.
fn weighted(weight: f64, score: f64) -> f64 {
    let value = weight * score;
    if value.is_nan() {
        0.0
    } else {
        value
    }
}

/// Computes the result of `op` over `sources` (`None`: a missing key), sorted by score
/// then member; ZINTERCARD stops counting at `limit` (0: no limit).
fn compute<'a>(
    op: SetOp,
    sources: &[Option<Source<'a>>],
    options: &SetOpOptions,
) -> Vec<(Cow<'a, [u8]>, f64)> {
    let mut result: Vec<(Cow<'a, [u8]>, f64)> = Vec::new();
    match op {
        SetOp::Union => {
            let mut order: Vec<usize> = (0..sources.len()).collect();
            order.sort_by_key(|&i| sources[i].map_or(0, Source::len));
            let mut scores: HashMap<Cow<'a, [u8]>, f64> = HashMap::new();
            let mut first_seen: Vec<Cow<'a, [u8]>> = Vec::new();
            for i in order {
                let Some(source) = sources[i] else { continue };
                let weight = options.weights[i];
                source.for_each(|member, score| {
                    let value = weighted(weight, score);
                    match scores.get_mut(&*member) {
                        Some(target) => options.aggregate.apply(target, value),
                        None => {
                            scores.insert(member.clone(), value);
                            first_seen.push(member);
                        }
                    }
                });
            }
            result = first_seen
                .into_iter()
                .map(|member| {
                    let score = scores.get(&*member).copied().unwrap_or_default();
                    (member, score)
                })
                .collect();
        }
        SetOp::Inter => {
            if sources.iter().any(Option::is_none) {
                return result;
            }
            let mut order: Vec<usize> = (0..sources.len()).collect();
            order.sort_by_key(|&i| sources[i].map_or(0, Source::len));
            let Some(first) = sources[order[0]] else {
                return result;
            };
            let first_weight = options.weights[order[0]];
            first.for_each(|member, score| {
                if options.limit > 0 && result.len() >= options.limit {
                    return;
                }
                let mut total = weighted(first_weight, score);
                for &j in &order[1..] {
                    let Some(found) = sources[j].and_then(|s| s.score(&member)) else {
                        return;
                    };
                    options
                        .aggregate
                        .apply(&mut total, found * options.weights[j]);
                }
                result.push((member, total));
            });
        }
        SetOp::Diff => {
            let Some(Some(first)) = sources.first() else {
                return result;
            };
            first.for_each(|member, score| {
                let elsewhere = sources[1..]
                    .iter()
                    .any(|s| s.is_some_and(|s| s.score(&member).is_some()));
                if !elsewhere {
                    result.push((member, score));
                }
            });
        }
    }
    result.sort_by(|a, b| {
        a.1.partial_cmp(&b.1)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.0.cmp(&b.0))
    });
    result
}

/// ZUNION, ZINTER, ZDIFF (`numkeys` at 1) and ZINTERCARD: read-only forms.
fn set_op_read(ctx: &mut Ctx<'_>, args: Argv<'_>, op: SetOp, card: bool) -> Result<(), CmdError> {
    let (first, numkeys) = set_op_keys(args, 1)?;
    let keys = args.slice(first..first + numkeys);
    let now = ctx.now_ms;
    let db = ctx.db();
    let read = db.read_keys(keys.iter());
    let mut expired = Vec::new();
    let mut sources = Vec::with_capacity(numkeys);
    for (key, found) in keys.iter().zip(read.lookups(keys.iter(), now)) {
        match found {
            Lookup::Live(entry) => sources.push(Some(Source::from_value(&entry.value)?)),
            Lookup::Expired => {
                expired.push(key);
                sources.push(None);
            }
            Lookup::Absent => sources.push(None),
        }
    }
    let options = set_op_options(args, first + numkeys, numkeys, op, false, card)?;
    let result = compute(op, &sources, &options);
    if card {
        ctx.out.count(result.len());
    } else {
        write_entries(
            ctx.out,
            result.len(),
            result.iter().map(|(member, score)| (&**member, *score)),
            options.with_scores,
        );
    }
    drop(read);
    db.expire_if_due(expired, now);
    Ok(())
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: `dst numkeys key...`, replying with the size of
/// the stored result; an empty result deletes `dst`.
fn set_op_store(ctx: &mut Ctx<'_>, args: Argv<'_>, op: SetOp) -> Result<(), CmdError> {
    let (first, numkeys) = set_op_keys(args, 2)?;
    let limits = limits(ctx);
    let (dst, now) = (&args[1], ctx.now_ms);
    let keys = args.slice(first..first + numkeys);
    let mut locked = ctx.db().lock_keys(std::iter::once(dst).chain(keys.iter()));
    let mut owned = Vec::with_capacity(numkeys);
    for key in keys.iter() {
        let (shard, hash) = locked.shard(key).ok_or(errors::SYNTAX)?;
        match shard.get_read(hash, key, now) {
            Some(entry) => owned.push(Some(OwnedSource::from_value(&entry.value)?)),
            None => owned.push(None),
        }
    }
    let options = set_op_options(args, first + numkeys, numkeys, op, true, false)?;
    let sources: Vec<Option<Source<'_>>> = owned
        .iter()
        .map(|s| s.as_ref().map(OwnedSource::as_source))
        .collect();
    let result: Vec<(Vec<u8>, f64)> = compute(op, &sources, &options)
        .into_iter()
        .map(|(m, s)| (m.into_owned(), s))
        .collect();
    let stored = result.len();
    let (shard, hash) = locked.shard(dst).ok_or(errors::SYNTAX)?;
    let changed = store_result(shard, hash, dst, result, &limits, now);
    if changed {
        locked.propagate_named(&args[0], args.slice(1..).iter());
    }
    drop(locked);
    drop(owned);
    let event = match op {
        SetOp::Union => "zunionstore",
        SetOp::Inter => "zinterstore",
        SetOp::Diff => "zdiffstore",
    };
    notify_stored(ctx, event, dst, stored, changed);
    ctx.out.count(stored);
    Ok(())
}

/// `ZUNION numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn zunion(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_read(ctx, args, SetOp::Union, false)
}

/// `ZINTER numkeys key [key ...] [WEIGHTS weight ...] [AGGREGATE SUM|MIN|MAX] [WITHSCORES]`
pub fn zinter(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_read(ctx, args, SetOp::Inter, false)
}

/// `ZDIFF numkeys key [key ...] [WITHSCORES]`
pub fn zdiff(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_read(ctx, args, SetOp::Diff, false)
}

/// `ZINTERCARD numkeys key [key ...] [LIMIT limit]`
pub fn zintercard(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_read(ctx, args, SetOp::Inter, true)
}

/// `ZUNIONSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub fn zunionstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_store(ctx, args, SetOp::Union)
}

/// `ZINTERSTORE destination numkeys key [key ...] [WEIGHTS ...] [AGGREGATE ...]`
pub fn zinterstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_store(ctx, args, SetOp::Inter)
}

/// `ZDIFFSTORE destination numkeys key [key ...]`
pub fn zdiffstore(ctx: &mut Ctx<'_>, args: Argv<'_>) -> Result<(), CmdError> {
    set_op_store(ctx, args, SetOp::Diff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_format_as_redis_7_0() {
        let cases: [(f64, &str); 14] = [
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (1.5e-7, "1.4999999999999999e-07"),
            (3.0, "3"),
            (-1.5, "-1.5"),
            (1e15, "1000000000000000"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1.0000000000000001e-05"),
            (123_456_789.123_456_79, "123456789.12345679"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (-0.0, "-0"),
        ];
        for (value, text) in cases {
            assert_eq!(format_score(value).as_bytes(), text.as_bytes(), "{value:e}");
        }
        assert_eq!(format_score(5e-324).as_bytes(), b"4.9406564584124654e-324");
        assert_eq!(
            format_score(f64::MAX).as_bytes(),
            b"1.7976931348623157e+308"
        );
    }

    #[test]
    fn scores_parse_as_strtod() {
        for (text, value) in [
            ("1", 1.0),
            ("-2.5", -2.5),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("+inf", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("0x10", 16.0),
            ("0x1p-2", 0.25),
            ("-0X1.8P1", -3.0),
            ("2.5e-310", 2.5e-310),
        ] {
            assert_eq!(parse_score(text.as_bytes()), Some(value), "{text}");
        }
        for text in [
            "", " 1", "1 ", "nan", "NaN", "1e400", "1e-400", "0x", "1e", "--1", "inf1", "abc",
        ] {
            assert_eq!(parse_score(text.as_bytes()), None, "{text}");
        }
        // Range bounds: leading space, overflow and an empty text are accepted.
        assert_eq!(ScoreBound::parse(b" 1").map(|b| b.value), Ok(1.0));
        assert_eq!(
            ScoreBound::parse(b"(1e400").map(|b| (b.value, b.exclusive)),
            Ok((f64::INFINITY, true))
        );
        assert_eq!(ScoreBound::parse(b"").map(|b| b.value), Ok(0.0));
        assert_eq!(ScoreBound::parse(b"(").map(|b| b.value), Ok(0.0));
        assert!(ScoreBound::parse(b"nan").is_err());
        assert!(ScoreBound::parse(b"1x").is_err());
        assert!(LexBound::parse(b"x").is_err());
        assert!(LexBound::parse(b"++").is_err());
    }

    proptest::proptest! {
        /// 17 significant digits always read back to the same double, and the text has the
        /// shape `%.17g` gives (no trailing zeros in a fraction, a two-digit exponent or more).
        #[test]
        fn formatted_scores_round_trip(value in proptest::num::f64::ANY) {
            proptest::prop_assume!(!value.is_nan());
            let text = format_score(value);
            let text = std::str::from_utf8(text.as_bytes()).unwrap();
            let parsed = parse_score(text.as_bytes()).or_else(|| ScoreBound::parse(text.as_bytes()).ok().map(|b| b.value));
            proptest::prop_assert_eq!(parsed.map(f64::to_bits), Some(value.to_bits()), "{}", text);
            if let Some((mantissa, exponent)) = text.split_once('e') {
                proptest::prop_assert!(exponent.len() >= 3, "{}", text);
                proptest::prop_assert!(!mantissa.ends_with('0') || !mantissa.contains('.'), "{}", text);
            } else if text.contains('.') {
                proptest::prop_assert!(!text.ends_with('0'), "{}", text);
            }
        }
    }

    /// Sets are inputs too, every member scoring 1 (weights apply).
    #[test]
    fn set_operations_take_sets() {
        let plain = |result: Vec<(Cow<'_, [u8]>, f64)>| -> Vec<(Vec<u8>, f64)> {
            result
                .into_iter()
                .map(|(m, s)| (m.into_owned(), s))
                .collect()
        };
        let zset: ZSet = [(&b"a"[..], 2.0), (b"b", 3.0)]
            .into_iter()
            .map(|(m, s)| (m, Score::new(s).unwrap()))
            .collect();
        let set: Set = [&b"b"[..], b"c"].into_iter().collect();
        let sources = [Some(Source::Sorted(&zset)), Some(Source::Plain(&set))];
        let options = SetOpOptions {
            weights: vec![1.0, 10.0],
            aggregate: Aggregate::Sum,
            with_scores: true,
            limit: 0,
        };
        let union = plain(compute(SetOp::Union, &sources, &options));
        assert_eq!(
            union,
            vec![
                (b"a".to_vec(), 2.0),
                (b"c".to_vec(), 10.0),
                (b"b".to_vec(), 13.0)
            ]
        );
        let inter = plain(compute(SetOp::Inter, &sources, &options));
        assert_eq!(inter, vec![(b"b".to_vec(), 13.0)]);
        let diff = plain(compute(SetOp::Diff, &sources, &options));
        assert_eq!(diff, vec![(b"a".to_vec(), 2.0)]);
        let reversed = [sources[1], sources[0]];
        assert_eq!(
            plain(compute(SetOp::Diff, &reversed, &options)),
            vec![(b"c".to_vec(), 1.0)]
        );
        assert!(compute(SetOp::Inter, &[sources[0], None], &options).is_empty());
    }
}
