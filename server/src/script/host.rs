//! How a running script reaches its host: the permanent `redis.call`, `redis.pcall` and
//! `redis.acl_check_cmd` functions and the [`HostSlot`] they share with the interrupt hook.

use std::cell::{Cell, RefCell};
use std::ptr::NonNull;
use std::rc::Rc;

use bytes::Bytes;
use mlua::{Function, Lua, MultiValue, Value};
use protocol::{Frame, OwnedArgv, Version};

use super::convert::frame_to_lua;
use super::engine::{reply_error, Host, RunState};
use crate::cmd::zset::format_score;

/// The host of the running script, shared by the permanent `redis.call`, `redis.pcall` and
/// `redis.acl_check_cmd` functions and the interrupt hook, plus what they keep between calls.
///
/// Lua functions must be `'static`, while a host borrows the caller's connection for one run.
/// (`Lua::scope` would give each run its own borrowing function, but creating and dropping
/// one per run cost about a tenth of an EVALSHA.) So the slot holds a pointer to the host,
/// with its lifetime erased, exactly while [`HostSlot::with_installed`] runs, and
/// [`HostSlot::with`] moves the pointer out while it lends the host, so there is never more
/// than one `&mut` to it: a nested use finds the slot empty, as a second `RefCell` borrow
/// would fail.
#[derive(Default)]
pub(crate) struct HostSlot {
    host: Cell<Option<NonNull<dyn Host>>>,
    /// The arguments of the current `redis.call`, kept between calls.
    args: RefCell<OwnedArgv>,
    /// A coroutine took the interrupt hook from the main thread.
    pub(crate) hook_moved: Cell<bool>,
    /// A script called `collectgarbage("stop")`.
    pub(crate) gc_stopped: Cell<bool>,
}

impl HostSlot {
    /// Runs `f` with `host` reachable through [`with`](Self::with); the slot is empty again
    /// when this returns or unwinds.
    #[allow(unsafe_code)]
    pub(crate) fn with_installed<R>(&self, host: &mut dyn Host, f: impl FnOnce() -> R) -> R {
        struct Uninstall<'a>(&'a Cell<Option<NonNull<dyn Host>>>);
        impl Drop for Uninstall<'_> {
            fn drop(&mut self) {
                self.0.set(None);
            }
        }
        let pointer: NonNull<dyn Host + '_> = NonNull::from(host);
        // SAFETY: only the lifetime bound of the trait object is erased (the pointer's layout
        // is unchanged). The pointer is readable only through `with` while `f` runs: the
        // guard empties the slot before this function returns or unwinds, and `host` stays
        // mutably borrowed by this call until then, so no other access to it exists.
        let pointer: NonNull<dyn Host + 'static> = unsafe { std::mem::transmute(pointer) };
        self.host.set(Some(pointer));
        let _uninstall = Uninstall(&self.host);
        f()
    }

    /// Lends the installed host to `f` (None outside [`with_installed`](Self::with_installed),
    /// and inside another `with`).
    #[allow(unsafe_code)]
    pub(crate) fn with<R>(&self, f: impl FnOnce(Option<&mut dyn Host>) -> R) -> R {
        struct PutBack<'a>(
            &'a Cell<Option<NonNull<dyn Host>>>,
            Option<NonNull<dyn Host>>,
        );
        impl Drop for PutBack<'_> {
            fn drop(&mut self) {
                if self.1.is_some() {
                    self.0.set(self.1);
                }
            }
        }
        let taken = self.host.take();
        let put_back = PutBack(&self.host, taken);
        // SAFETY: a pointer in the slot points at the host `with_installed` borrows mutably
        // for as long as the slot holds it (see there). Taking it out of the slot makes this
        // the only reference until `put_back` returns it, after `f`, whose signature keeps
        // the reference from escaping.
        let host = put_back.1.map(|mut pointer| unsafe { pointer.as_mut() });
        f(host)
    }

    pub(crate) fn is_installed(&self) -> bool {
        self.host.get().is_some()
    }
}

/// What a host function does.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostOp {
    Call,
    Pcall,
    AclCheck,
}

/// `redis.call`, `redis.pcall` and `redis.acl_check_cmd`: Rust (C) functions, so a script's
/// frame stays on the stack for error locations even when it tail-calls them.
pub(crate) fn host_function(lua: &Lua, slot: &Rc<HostSlot>, op: HostOp) -> mlua::Result<Function> {
    let slot = Rc::clone(slot);
    lua.create_function(move |lua, args: MultiValue| {
        if !slot.is_installed() {
            return Err(reply_error(
                "ERR This function is only available while a script runs",
            ));
        }
        match op {
            HostOp::Call => redis_call(lua, &slot, args, true),
            HostOp::Pcall => redis_call(lua, &slot, args, false),
            HostOp::AclCheck => acl_check(&slot, args).map(Value::Boolean),
        }
    })
}

/// Appends the arguments of `redis.call`-like helpers to `out` as command arguments: strings
/// as they are, numbers as Redis 7.0 writes them (`%.17g`, not Lua's `%.14g`); false
/// (leaving `out` partly filled) for any other type.
fn command_args(args: &MultiValue, out: &mut OwnedArgv) -> bool {
    for arg in args {
        match arg {
            Value::String(s) => out.push(&s.as_bytes()),
            // mlua reads integral numbers as integers; `%.17g` writes them as plain digits
            // below 10^17.
            Value::Integer(i) if i.unsigned_abs() < 100_000_000_000_000_000 => {
                out.push(protocol::IntText::new(*i).as_bytes());
            }
            Value::Integer(i) => out.push(format_score(*i as f64).as_bytes()),
            Value::Number(n) if n.is_nan() => out.push(if n.is_sign_negative() {
                b"-nan"
            } else {
                b"nan"
            }),
            Value::Number(n) => out.push(format_score(*n).as_bytes()),
            _ => return false,
        }
    }
    true
}

const NO_ARGUMENTS: &str = "ERR Please specify at least one argument for this redis lib call";
const BAD_ARGUMENT_TYPE: &str = "ERR Lua redis lib command arguments must be strings or integers";

/// `redis.call` (`raise`) and `redis.pcall`: runs a command through the host.
fn redis_call(lua: &Lua, slot: &HostSlot, args: MultiValue, raise: bool) -> mlua::Result<Value> {
    let fail = |text: &str| -> mlua::Result<Value> {
        if raise {
            Err(reply_error(text))
        } else {
            let t = lua.create_table_with_capacity(0, 1)?;
            t.raw_set("err", text)?;
            Ok(Value::Table(t))
        }
    };
    if args.is_empty() {
        return fail(NO_ARGUMENTS);
    }
    let mut argv = slot.args.take();
    argv.clear();
    let converted = command_args(&args, &mut argv);
    let resp3 = lua.app_data_ref::<RunState>().is_some_and(|s| s.resp3);
    let version = if resp3 {
        Version::Resp3
    } else {
        Version::Resp2
    };
    let reply = match converted {
        true => Ok(slot.with(|host| match host {
            Some(host) => host.call(argv.argv(), version),
            None => Frame::Error(Bytes::from_static(b"ERR redis.call is not reentrant")),
        })),
        false => Err(BAD_ARGUMENT_TYPE),
    };
    *slot.args.borrow_mut() = argv;
    let reply = match reply {
        Ok(reply) => reply,
        Err(text) => return fail(text),
    };
    if raise {
        if let Frame::Error(text) = &reply {
            return Err(reply_error(String::from_utf8_lossy(text)));
        }
    }
    frame_to_lua(lua, &reply, resp3)
}

/// `redis.acl_check_cmd(cmd, ...)`: asks the host whether the user may run the command.
fn acl_check(slot: &HostSlot, args: MultiValue) -> mlua::Result<bool> {
    if args.is_empty() {
        return Err(reply_error(NO_ARGUMENTS));
    }
    let mut argv = OwnedArgv::default();
    if !command_args(&args, &mut argv) {
        return Err(reply_error(BAD_ARGUMENT_TYPE));
    }
    let verdict = slot.with(|host| match host {
        Some(host) => host.acl_check(argv.argv()),
        None => Ok(true),
    });
    verdict.map_err(reply_error)
}

/// The slot's pointer juggling on its own, without Lua (which Miri cannot run): these are
/// the tests `cargo +nightly miri test` runs for this module.
#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Argv;

    /// A host that counts its calls and answers with the count.
    struct Counter(i64);

    impl Host for Counter {
        fn call(&mut self, _args: Argv<'_>, _version: Version) -> Frame {
            self.0 += 1;
            Frame::Integer(self.0)
        }

        fn interrupt(&mut self) -> Option<String> {
            None
        }
    }

    fn call(host: &mut dyn Host) -> Frame {
        let args = OwnedArgv::default();
        host.call(args.argv(), Version::Resp2)
    }

    #[test]
    fn the_host_is_reachable_only_while_installed() {
        let slot = HostSlot::default();
        let mut counter = Counter(0);
        assert!(!slot.is_installed());
        assert!(slot.with(|host| host.is_none()));
        let replies = slot.with_installed(&mut counter, || {
            assert!(slot.is_installed());
            let first = slot.with(|host| call(host.expect("installed")));
            let second = slot.with(|host| call(host.expect("put back after the first use")));
            (first, second)
        });
        assert_eq!(replies, (Frame::Integer(1), Frame::Integer(2)));
        assert!(!slot.is_installed());
        assert!(slot.with(|host| host.is_none()));
        // The host is the caller's again, with what the script did to it.
        assert_eq!(counter.0, 2);
    }

    #[test]
    fn a_nested_use_finds_the_slot_empty() {
        let slot = HostSlot::default();
        let mut counter = Counter(0);
        slot.with_installed(&mut counter, || {
            slot.with(|outer| {
                let outer = outer.expect("installed");
                assert!(slot.with(|inner| inner.is_none()));
                assert_eq!(call(outer), Frame::Integer(1));
            });
            // Put back once the outer use ended.
            assert!(slot.with(|host| host.is_some()));
        });
        assert_eq!(counter.0, 1);
    }

    #[test]
    fn unwinding_empties_the_slot_and_puts_the_host_back() {
        let slot = HostSlot::default();
        let mut counter = Counter(0);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            slot.with_installed(&mut counter, || {
                slot.with(|host| {
                    call(host.expect("installed"));
                    panic!("a host function failing");
                })
            })
        }));
        assert!(unwound.is_err());
        assert!(!slot.is_installed());
        assert_eq!(counter.0, 1);
        // A later run installs and reaches a host as usual.
        let mut other = Counter(10);
        let reply = slot.with_installed(&mut other, || {
            slot.with(|host| call(host.expect("installed")))
        });
        assert_eq!(reply, Frame::Integer(11));
    }
}
