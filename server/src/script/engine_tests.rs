//! Engine tests against a fake host. Expected replies are what Redis 7.0.15 returned for the
//! same script (`EVAL <script> 0`), unless a comment says otherwise.

use std::collections::HashMap;

use bytes::Bytes;
use protocol::{Argv, Frame, OwnedArgv, Version};

use super::*;
use crate::script::functions::{decode_dump, FunctionLibraries, RestorePolicy};

/// A tiny keyspace answering a few commands the way the server does for scripts.
#[derive(Default)]
struct FakeHost {
    data: HashMap<Bytes, Bytes>,
    calls: Vec<(Vec<Bytes>, Version)>,
    /// Interrupt once polled this many times (None: never).
    interrupt_after: Option<usize>,
    polls: usize,
}

fn no_args() -> Argv<'static> {
    Argv::new(&[], &[])
}

fn bulk(s: &str) -> Frame {
    Frame::Bulk(Bytes::copy_from_slice(s.as_bytes()))
}

fn err(s: &str) -> Frame {
    Frame::Error(Bytes::copy_from_slice(s.as_bytes()))
}

fn simple(s: &str) -> Frame {
    Frame::Simple(Bytes::copy_from_slice(s.as_bytes()))
}

impl Host for FakeHost {
    fn call(&mut self, args: Argv<'_>, version: Version) -> Frame {
        let args = args.to_vec();
        self.calls.push((args.clone(), version));
        let name = String::from_utf8_lossy(&args[0]).to_ascii_uppercase();
        let arity = |n: usize| args.len() == n;
        match name.as_str() {
            "PING" => simple("PONG"),
            "GET" if arity(2) => self
                .data
                .get(&args[1])
                .cloned()
                .map_or(Frame::Null, Frame::Bulk),
            "SET" if arity(3) => {
                self.data.insert(args[1].clone(), args[2].clone());
                simple("OK")
            }
            "INCR" if arity(2) => {
                let current = self
                    .data
                    .get(&args[1])
                    .cloned()
                    .unwrap_or_else(|| Bytes::from("0"));
                match std::str::from_utf8(&current)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                {
                    Some(n) => {
                        self.data
                            .insert(args[1].clone(), Bytes::from((n + 1).to_string()));
                        Frame::Integer(n + 1)
                    }
                    None => err("ERR value is not an integer or out of range"),
                }
            }
            "HGETALL" => Frame::Map(vec![(bulk("a"), bulk("1"))]),
            "SMEMBERS" => Frame::Set(vec![bulk("a")]),
            "ZSCORE" => Frame::Double(1.5),
            "GET" | "SET" | "INCR" => {
                err("ERR Wrong number of args calling Redis command from script")
            }
            _ => err("ERR Unknown Redis command called from script"),
        }
    }

    fn interrupt(&mut self) -> Option<String> {
        self.polls += 1;
        match self.interrupt_after {
            Some(n) if self.polls > n => {
                Some("ERR Script killed by user with SCRIPT KILL...".to_string())
            }
            _ => None,
        }
    }

    fn acl_check(&mut self, args: Argv<'_>) -> Result<bool, String> {
        match &args[0] {
            b"nosuch" => Err("ERR Invalid command passed to redis.acl_check_cmd()".to_string()),
            _ => Ok(true),
        }
    }
}

struct Setup {
    engine: Engine,
    cache: ScriptCache,
    host: FakeHost,
}

impl Setup {
    fn new() -> Self {
        Setup {
            engine: Engine::new().unwrap(),
            cache: ScriptCache::new(),
            host: FakeHost::default(),
        }
    }

    fn eval_with(&mut self, body: &str, keys: &[&str], argv: &[&str]) -> Frame {
        let script = match self.engine.prepare(&self.cache, body.as_bytes()) {
            Ok(s) => s,
            Err(e) => return err(&e),
        };
        let keys = OwnedArgv::new(keys);
        let argv = OwnedArgv::new(argv);
        self.engine
            .run(&script, keys.argv(), argv.argv(), &mut self.host)
    }

    fn eval(&mut self, body: &str) -> Frame {
        self.eval_with(body, &[], &[])
    }
}

fn eval(body: &str) -> Frame {
    Setup::new().eval(body)
}

#[test]
fn sha1_names() {
    assert_eq!(sha1_hex(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_eq!(redis_version_num(), 0x07_02_00);
}

#[test]
fn plain_replies() {
    assert_eq!(eval("return 3.99"), Frame::Integer(3));
    assert_eq!(
        eval("return {1,2,3.5,'x',nil,4}"),
        Frame::Array(vec![
            Frame::Integer(1),
            Frame::Integer(2),
            Frame::Integer(3),
            bulk("x")
        ])
    );
    assert_eq!(eval("return true"), Frame::Integer(1));
    assert_eq!(eval("return false"), Frame::Null);
    assert_eq!(eval("redis.setresp(3); return true"), Frame::Boolean(true));
    assert_eq!(
        eval("redis.setresp(3); return false"),
        Frame::Boolean(false)
    );
    assert_eq!(eval("return {err='My Error'}"), err("My Error"));
    assert_eq!(eval("return {ok='fine'}"), simple("fine"));
    assert_eq!(eval("return {double=2.5}"), Frame::Double(2.5));
    assert_eq!(eval("return _VERSION"), bulk("Lua 5.1"));
}

#[test]
fn error_and_status_reply_helpers() {
    assert_eq!(eval("return redis.error_reply('x')"), err("ERR x"));
    assert_eq!(eval("return redis.error_reply('-x').err"), bulk("ERR x"));
    assert_eq!(eval("return redis.error_reply('-MY err')"), err("MY err"));
    assert_eq!(
        eval("return redis.error_reply('hello world')"),
        err("hello world")
    );
    assert_eq!(eval("return redis.error_reply('')"), err("ERR "));
    assert_eq!(eval("return redis.status_reply('y')"), simple("y"));
    assert_eq!(
        eval("return redis.status_reply('-hello')"),
        simple("-hello")
    );
    // Bad arguments give an error *value*, so no script suffix.
    assert_eq!(
        eval("return redis.error_reply(3)"),
        err("ERR wrong number or type of arguments")
    );
    assert_eq!(
        eval("return redis.status_reply()"),
        err("ERR wrong number or type of arguments")
    );
}

#[test]
fn uncaught_error_texts_match_redis() {
    let cases = [
        ("return x.y", "ERR user_script:1: Script attempted to access nonexistent global variable 'x' script: c7977cd7f36622d6ecd2600423927e1a1c3028b4, on @user_script:1."),
        ("error(\"boom\")", "ERR user_script:1: boom script: 872b3fcb081448525c6141cdfa3df8374d30d162, on @user_script:1."),
        ("error({err=\"MY boom\"})", "MY boom script: 6f210a79061330ed689d8391066504f6e8d371f5, on @user_script:1."),
        ("error(\"boom\",0)", "ERR boom script: 36720bde7e0be14e957abc6d85db0ad60e04dd48, on @user_script:1."),
        ("error()", "ERR nil script: aca90d914519fdb9825352bdc0befb59f7c8510f, on @user_script:1."),
        ("error(true)", "ERR true script: 4fafe2149f68a1618a3eef40aeef55f5af6951da, on @user_script:1."),
        ("redis.call(\"SET\",\"k\",\"v\"); return redis.call(\"INCR\",\"k\")", "ERR value is not an integer or out of range script: 71b8572e1a867c6f745ddef5d19905417c0f58f4, on @user_script:1."),
        ("return redis.call(\"SET\", {}, 1)", "ERR Lua redis lib command arguments must be strings or integers script: 80f515b041e013dfdd9e38f2aef09e516ddc6a11, on @user_script:1."),
        ("return redis.call(\"SET\", \"k\", true)", "ERR Lua redis lib command arguments must be strings or integers script: 3e9ebfd002447fa49322576c821dd187f7ccd559, on @user_script:1."),
        ("return redis.call()", "ERR Please specify at least one argument for this redis lib call script: 0a907e1429221a4d85516cab7fd219a82a9439d8, on @user_script:1."),
        ("return redis.call(\"nosuch\")", "ERR Unknown Redis command called from script script: 2218effcac8108416909801acfb39c080a85adfa, on @user_script:1."),
        ("local x = 1\nlocal y = 2\nerror(\"three\")", "ERR user_script:3: three script: 4153f7bf17ac0c2db08f53476452d80c15f17667, on @user_script:3."),
        ("local x = 1\n\nerror({err=\"ERR three\"})", "ERR three script: 81bb088f23ed79587c6513df29403b2536dddca8, on @user_script:3."),
        ("redis.call(\"SET\",\"k\",\"v\")\nlocal x = 1\nredis.call(\"INCR\", \"k\")", "ERR value is not an integer or out of range script: 88c3a582a39e8157a9b78a34ba19f98cd5f5255d, on @user_script:3."),
        ("local function f() error(\"deep\") end\nlocal x = 1\nf()", "ERR user_script:1: deep script: 813f8b6608c48337266dfe3f8d005f7034227fe9, on @user_script:1."),
        ("local t = setmetatable({}, {__index=function() error(\"meta\") end})\nreturn t.x", "ERR user_script:1: meta script: a28b03387ea345769b97507324b78fdd6440c6a5, on @user_script:1."),
        ("return redis.setresp(4)", "ERR RESP version must be 2 or 3. script: 921c0a48021d97dfd5884aeea41875972c7804d9, on @user_script:1."),
        ("return redis.setresp()", "ERR redis.setresp() requires one argument. script: 76da64e28014e7c9ad76db33c3918c53d81a3d7e, on @user_script:1."),
        ("return redis.sha1hex()", "ERR wrong number of arguments script: 3c7ce947ae74a835cc575b6ee87fb27503cb7ba4, on @user_script:1."),
        ("return redis.log(99, \"x\")", "ERR Invalid debug level. script: 794ec71b975f1c1904937bcbf367ff85f5c9a628, on @user_script:1."),
        ("return redis.log(redis.LOG_WARNING)", "ERR redis.log() requires two arguments or more. script: 224c2b6c4d4a245fb6c4394854d25a2ca448909c, on @user_script:1."),
        ("return redis.log(\"a\",\"b\")", "ERR First argument must be a number (log level). script: 1a884cc3bc8a09ea438281f166f35b96d3384f6f, on @user_script:1."),
        ("return redis.set_repl(99)", "ERR Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE. script: fae934173b6296d6836d5d5f52e192640f8897d9, on @user_script:1."),
        ("return redis.set_repl()", "ERR redis.set_repl() requires two arguments. script: 9504533b41060c143a92eb2f8878e77d33b6dc33, on @user_script:1."),
        ("return redis.acl_check_cmd()", "ERR Please specify at least one argument for this redis lib call script: 1124f33ad66e7866b4e0c1499a4c20fb5eb9c180, on @user_script:1."),
        ("return redis.acl_check_cmd(\"nosuch\")", "ERR Invalid command passed to redis.acl_check_cmd() script: 845c47ef9792d96c18d3ab32fa5bcfca46201d7a, on @user_script:1."),
    ];
    for (script, expected) in cases {
        assert_eq!(eval(script), err(expected), "{script}");
    }
}

#[test]
fn compile_errors() {
    assert_eq!(
        eval("return 1 +"),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '<eof>'")
    );
    // The shebang line still counts: the error is on line 2.
    assert_eq!(
        eval("#!lua\nreturn 1 +"),
        err("ERR Error compiling script (new function): user_script:2: unexpected symbol near '<eof>'")
    );
    assert_eq!(
        eval("#!lua flags=bogus\nreturn 1"),
        err("ERR Unexpected flag in script shebang: bogus")
    );
}

#[test]
fn pcall_and_redis_pcall() {
    let mut s = Setup::new();
    s.eval("redis.call('SET','k','v')");
    assert_eq!(
        s.eval("return redis.pcall('INCR','k')"),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        s.eval("return redis.pcall('nosuch')"),
        err("ERR Unknown Redis command called from script")
    );
    assert_eq!(
        s.eval("local r = redis.pcall('INCR','k'); return type(r.err) .. r.err"),
        bulk("stringERR value is not an integer or out of range")
    );
    assert_eq!(
        s.eval("return redis.pcall('SET',{},1)"),
        err("ERR Lua redis lib command arguments must be strings or integers")
    );
    assert_eq!(
        s.eval("return redis.pcall()"),
        err("ERR Please specify at least one argument for this redis lib call")
    );
    // Lua's pcall around a failing redis.call: the error arrives as its text.
    assert_eq!(
        s.eval("local ok, e = pcall(function() redis.call('INCR','k') end); return {type(e), e}"),
        Frame::Array(vec![
            bulk("string"),
            bulk("ERR value is not an integer or out of range")
        ])
    );
    assert_eq!(
        s.eval("local ok, e = pcall(redis.call, 'INCR','k'); return {type(e), e}"),
        Frame::Array(vec![
            bulk("string"),
            bulk("ERR value is not an integer or out of range")
        ])
    );
    assert_eq!(
        s.eval("local ok, e = pcall(error, {err='X y'}) return e"),
        bulk("X y")
    );
    assert_eq!(
        s.eval("local ok, e = pcall(function() error('x') end); return e"),
        bulk("user_script:1: x")
    );
    assert_eq!(
        s.eval("local ok, e = pcall(function() x.y = 1 end); return e"),
        bulk("user_script:1: Script attempted to access nonexistent global variable 'x'")
    );
    assert_eq!(
        s.eval("local ok, e = pcall(redis.error_reply) return {ok, e}"),
        Frame::Array(vec![
            Frame::Integer(1),
            err("ERR wrong number or type of arguments")
        ])
    );
}

#[test]
fn command_replies_reach_the_script() {
    let mut s = Setup::new();
    assert_eq!(
        s.eval("return {redis.call('GET', 'nokey')}"),
        Frame::Array(vec![Frame::Null])
    );
    assert_eq!(
        s.eval("redis.setresp(3) return {redis.call('GET', 'nokey')}"),
        Frame::Array(vec![])
    );
    // Redis writes `:1` to a RESP2 client: the boolean a RESP3 script returns, downgraded.
    assert_eq!(
        s.eval("redis.setresp(3) return redis.call('GET', 'nokey') == nil"),
        Frame::Boolean(true)
    );
    assert_eq!(
        s.eval("return redis.call('GET', 'nokey') == false"),
        Frame::Integer(1)
    );
    assert_eq!(
        s.eval("local r = redis.call('PING') return {type(r), r.ok}"),
        Frame::Array(vec![bulk("table"), bulk("PONG")])
    );
    assert_eq!(
        s.eval(
            "redis.setresp(3) local r = redis.call('HGETALL', 'h') return {type(r.map), r.map.a}"
        ),
        Frame::Array(vec![bulk("table"), bulk("1")])
    );
    assert_eq!(
        s.eval("return redis.call('HGETALL', 'h')"),
        Frame::Array(vec![bulk("a"), bulk("1")])
    );
    assert_eq!(
        s.eval("redis.setresp(3) local r = redis.call('SMEMBERS', 's') return {type(r.set), tostring(r.set.a)}"),
        Frame::Array(vec![bulk("table"), bulk("true")])
    );
    assert_eq!(
        s.eval(
            "redis.setresp(3) local r = redis.call('ZSCORE', 'z', 'a') return {type(r), r.double}"
        ),
        Frame::Array(vec![bulk("table"), Frame::Integer(1)])
    );
    assert_eq!(
        s.eval("redis.setresp(3); return redis.call('ZSCORE', 'z', 'a')"),
        Frame::Double(1.5)
    );
    // Numbers become arguments as Redis 7.0 writes them (`%.17g`, not Lua's `%.14g`).
    for (number, text) in [
        ("1e30", "1e+30"),
        ("1.5", "1.5"),
        ("7", "7"),
        ("-7", "-7"),
        ("0.1", "0.10000000000000001"),
        ("1e15", "1000000000000000"),
        ("99999999999999999", "1e+17"),
        ("1e17", "1e+17"),
        ("-1e17", "-1e+17"),
        ("123456789012345678", "1.2345678901234568e+17"),
        ("2^63", "9.2233720368547758e+18"),
        ("1/0", "inf"),
        ("-1/0", "-inf"),
        ("0/0", "-nan"),
        ("-(0/0)", "nan"),
    ] {
        s.eval(&format!("redis.call('SET', 'k', {number})"));
        assert_eq!(
            s.eval("return redis.call('GET', 'k')"),
            bulk(text),
            "{number}"
        );
    }
    // The host hears the protocol the script chose.
    s.host.calls.clear();
    s.eval("redis.call('PING') redis.setresp(3) redis.call('PING')");
    let versions: Vec<Version> = s.host.calls.iter().map(|(_, v)| *v).collect();
    assert_eq!(versions, [Version::Resp2, Version::Resp3]);
    // setresp does not outlive its run.
    assert_eq!(s.eval("return true"), Frame::Integer(1));
}

#[test]
fn keys_and_argv() {
    let mut s = Setup::new();
    assert_eq!(
        s.eval_with(
            "return {#KEYS, #ARGV, KEYS[1], ARGV[2]}",
            &["k1", "k2"],
            &["a", "b"]
        ),
        Frame::Array(vec![
            Frame::Integer(2),
            Frame::Integer(2),
            bulk("k1"),
            bulk("b")
        ])
    );
    // KEYS may be changed inside a run (Redis allows it) but starts fresh the next time.
    assert_eq!(
        s.eval_with("KEYS[1] = 1; return KEYS[1]", &["k"], &[]),
        Frame::Integer(1)
    );
    assert_eq!(s.eval_with("return KEYS[1]", &["k"], &[]), bulk("k"));
    assert_eq!(s.eval("return KEYS"), Frame::Array(vec![]));
    assert_eq!(
        s.eval("KEYS = {}"),
        err("ERR user_script:1: Attempt to modify a readonly table script: 6f9c2135c385ef4406555ad3ccccb97d6af382cb, on @user_script:1.")
    );
}

#[test]
fn sandbox_matches_redis() {
    let readonly = [
        ("y = 1", "ERR user_script:1: Attempt to modify a readonly table script: 3308d33fdf689ac5f06669ac545db5c9abde8dbd, on @user_script:1."),
        ("_G.x = 1", "ERR user_script:1: Attempt to modify a readonly table script: e5cf4a26667af1721988fe8c9829d5cd2e26c62e, on @user_script:1."),
        ("rawset(_G, \"x\", 1); return x", "ERR Attempt to modify a readonly table script: 6245c8ac0aa78f5397a1aada2468ea9bf93d0cc5, on @user_script:1."),
        ("redis.call = nil", "ERR user_script:1: Attempt to modify a readonly table script: 2786c35ed73d3860851cf52e0b5dfbbc0bdb4803, on @user_script:1."),
        ("string.foo = 1; return 1", "ERR user_script:1: Attempt to modify a readonly table script: b44271bf7751d6ba54f0b1af2dec0d8088a1ecc2, on @user_script:1."),
        ("string.rep = nil", "ERR user_script:1: Attempt to modify a readonly table script: 02f9a6049f3f288f94f44301e448f328b81ef9df, on @user_script:1."),
        ("getmetatable(\"\").__index = nil", "ERR user_script:1: Attempt to modify a readonly table script: b120a585c4888117361e4e215dea0ed127683232, on @user_script:1."),
        ("setmetatable(_G, nil)", "ERR Attempt to modify a readonly table script: 22fdd3b51da2d4bc6703d71d651cd782d8e5a35f, on @user_script:1."),
    ];
    for (script, expected) in readonly {
        assert_eq!(eval(script), err(expected), "{script}");
    }
    for name in [
        "print", "os", "io", "require", "package", "dofile", "loadfile", "debug", "setfenv",
        "getfenv", "newproxy", "module",
    ] {
        let script = format!("return {name}");
        let expected = format!(
            "ERR user_script:1: Script attempted to access nonexistent global variable '{name}' script: {}, on @user_script:1.",
            sha1_hex(script.as_bytes())
        );
        assert_eq!(eval(&script), err(&expected), "{name}");
    }
    for name in [
        "coroutine",
        "gcinfo",
        "collectgarbage",
        "unpack",
        "select",
        "_G",
        "rawset",
        "load",
        "setmetatable",
        "string.dump",
        "table.concat",
        "math.floor",
        "tonumber",
        "xpcall",
    ] {
        assert_eq!(
            eval(&format!("return {name} ~= nil")),
            Frame::Integer(1),
            "{name}"
        );
    }
    // loadstring is there (a function: null as a reply); rawget sees through the proxies.
    assert_eq!(eval("return loadstring"), Frame::Null);
    assert_eq!(
        eval("return loadstring('return 1 + 1')()"),
        Frame::Integer(2)
    );
    assert_eq!(
        eval("local f, e = loadstring(string.dump(function() return 7 end)) return {type(f), tostring(e)}"),
        Frame::Array(vec![bulk("nil"), bulk("[string \"\x1bLuaQ\"]:1: unexpected symbol near 'char(27)'")])
    );
    assert_eq!(
        eval("local f, e = loadstring(\"x = 1\", \"=mine\") f()"),
        err("ERR mine:1: Attempt to modify a readonly table script: 51c178ed78ee6ea8c1370be71bce70de78fbb875, on =mine:1.")
    );
    assert_eq!(eval("return rawget(_G, 'redis') == nil"), Frame::Null);
    assert_eq!(
        eval("return rawget(string, 'len') ~= nil"),
        Frame::Integer(1)
    );
    assert_eq!(eval("return rawequal(_G, _G)"), Frame::Integer(1));
    // The globals a script sees: Redis 7.0.15's list, minus its internal error handler and the
    // libraries installed by `libs` (checked there).
    let libraries = ["bit", "cjson", "cmsgpack", "struct"];
    let globals =
        eval("local t = {} for k, v in pairs(_G) do t[#t+1] = k end table.sort(t) return t");
    let Frame::Array(names) = globals else {
        panic!("{globals:?}")
    };
    let names: Vec<Frame> = names
        .into_iter()
        .filter(|n| !libraries.iter().any(|l| *n == bulk(l)))
        .collect();
    let expected = [
        "ARGV",
        "KEYS",
        "_G",
        "_VERSION",
        "assert",
        "collectgarbage",
        "coroutine",
        "error",
        "gcinfo",
        "getmetatable",
        "ipairs",
        "load",
        "loadstring",
        "math",
        "next",
        "pairs",
        "pcall",
        "rawequal",
        "rawget",
        "rawset",
        "redis",
        "select",
        "setmetatable",
        "string",
        "table",
        "tonumber",
        "tostring",
        "type",
        "unpack",
        "xpcall",
    ];
    assert_eq!(names, expected.iter().map(|n| bulk(n)).collect::<Vec<_>>());
    // Hostile recursion is a plain error.
    assert_eq!(
        eval("local function f() return 1 + f() end return f()"),
        err("ERR user_script:1: stack overflow script: 2c347ae0c7feaa40c62d8208d59e954ee9ff79ff, on @user_script:1.")
    );
    // Coroutines behave as in Lua (Redis 7.0.15 outputs).
    assert_eq!(
        eval("local f = coroutine.wrap(function(a) local b = coroutine.yield(a + 1) return b * 2 end) return {f(1), f(10)}"),
        Frame::Array(vec![Frame::Integer(2), Frame::Integer(20)])
    );
    assert_eq!(
        eval("local f = coroutine.wrap(function() error(\"in co\") end) f()"),
        err("ERR user_script:1: user_script:1: in co script: 1d0e175226cec988a5810b1a3239abe65d15dafd, on @user_script:1.")
    );
    assert_eq!(
        eval("local co = coroutine.create(function() error({err=\"X co\"}) end) local ok, e = coroutine.resume(co) return {tostring(ok), type(e)}"),
        Frame::Array(vec![bulk("false"), bulk("table")])
    );
    assert_eq!(
        eval("return getmetatable('').__index == string"),
        Frame::Integer(1)
    );
    assert_eq!(eval("return ('abc'):upper()"), bulk("ABC"));
}

#[test]
fn sandbox_keeps_no_state_between_runs() {
    let mut s = Setup::new();
    // Every way of writing to shared tables fails...
    for script in [
        "math.floor = function() return 42 end",
        "rawset(string, 'upper', nil)",
        "setmetatable(string, {})",
        "local i = 0; local f = load(function() i = i + 1; if i == 1 then return 'x = 1' end end); f()",
        "getmetatable('').__index.upper = nil",
    ] {
        assert!(matches!(s.eval(script), Frame::Error(_)), "{script}");
    }
    // ...so the libraries are intact afterwards.
    assert_eq!(
        s.eval("return {math.floor(2.5), ('a'):upper()}"),
        Frame::Array(vec![Frame::Integer(2), bulk("A")])
    );
    // load (Lua 5.1: reader functions only) compiles text into the sandbox; binary chunks
    // are refused. Expected values from Redis 7.0.15.
    assert_eq!(
        s.eval("local parts = {\"return \", \"1 + 1\"}; local i = 0; local f = load(function() i = i + 1; return parts[i] end); return f()"),
        Frame::Integer(2)
    );
    assert_eq!(
        s.eval("return load(\"return 1\")"),
        err("ERR user_script:1: bad argument #1 to 'load' (function expected, got string) script: 6916b9bc60ca128d14e5fb974d36285348912d07, on @user_script:1.")
    );
    assert_eq!(
        s.eval("local i = 0; local f = load(function() i = i + 1; if i == 1 then return \"x = 5\" end end); f(); return 1"),
        err("ERR (load):1: Attempt to modify a readonly table script: d8ace94bc3d7969d325f85201ef75803335a9f93, on =(load):1.")
    );
    assert_eq!(
        s.eval("local s = string.dump(function() return 7 end); local done = false; local f, e = load(function() if done then return nil end; done = true; return s end); return {type(f), tostring(e)}"),
        Frame::Array(vec![bulk("nil"), bulk("(load):1: unexpected symbol near 'char(27)'")])
    );
    // collectgarbage is wrapped (to see `stop`) but fails as the real one does.
    assert_eq!(
        s.eval("return collectgarbage('x')"),
        err("ERR user_script:1: bad argument #1 to 'collectgarbage' (invalid option 'x') script: f11b79c569713d761494d18da54662dcac489000, on @user_script:1.")
    );
    assert_eq!(
        s.eval("return collectgarbage('count', 'a')"),
        err("ERR user_script:1: bad argument #2 to 'collectgarbage' (number expected, got string) script: f6640891d0f7674dd0d0e620b584812f225fdd81, on @user_script:1.")
    );
    assert_eq!(
        s.eval("return type(collectgarbage('count'))"),
        bulk("number")
    );
    assert_eq!(s.eval("return collectgarbage()"), Frame::Integer(0));
    assert_eq!(
        s.eval(
            "local ok, e = pcall(function() local r = collectgarbage('x') return r end) return e"
        ),
        bulk("user_script:1: bad argument #1 to 'collectgarbage' (invalid option 'x')")
    );
    // A stopped collector is restarted for the next script.
    assert_eq!(s.eval("collectgarbage('stop') return 1"), Frame::Integer(1));
    assert_eq!(
        s.eval("local before = collectgarbage('count') for i = 1, 200000 do local t = {i} end return collectgarbage('count') < before + 4096"),
        Frame::Integer(1)
    );
    // pairs/next see through the read-only proxies.
    assert_eq!(
        s.eval("local n = 0 for k in pairs(string) do n = n + 1 end return n > 10"),
        Frame::Integer(1)
    );
}

#[test]
fn redis_table_contents() {
    // Redis 7.0.15 lists these 23 names inside a script.
    let expected = [
        "LOG_DEBUG",
        "LOG_NOTICE",
        "LOG_VERBOSE",
        "LOG_WARNING",
        "REDIS_VERSION",
        "REDIS_VERSION_NUM",
        "REPL_ALL",
        "REPL_AOF",
        "REPL_NONE",
        "REPL_REPLICA",
        "REPL_SLAVE",
        "acl_check_cmd",
        "breakpoint",
        "call",
        "debug",
        "error_reply",
        "log",
        "pcall",
        "replicate_commands",
        "set_repl",
        "setresp",
        "sha1hex",
        "status_reply",
    ];
    assert_eq!(
        eval("local t = {}; for k,v in pairs(redis) do t[#t+1] = k end; table.sort(t); return t"),
        Frame::Array(expected.iter().map(|n| bulk(n)).collect())
    );
    assert_eq!(
        eval("return {redis.LOG_DEBUG,redis.LOG_VERBOSE,redis.LOG_NOTICE,redis.LOG_WARNING}"),
        Frame::Array((0..4).map(Frame::Integer).collect())
    );
    assert_eq!(
        eval("return {redis.REPL_NONE,redis.REPL_AOF,redis.REPL_SLAVE,redis.REPL_REPLICA,redis.REPL_ALL}"),
        Frame::Array([0, 1, 2, 2, 3].into_iter().map(Frame::Integer).collect())
    );
    // Version as kvstore reports it in INFO (7.2.0).
    assert_eq!(
        eval("return {redis.REDIS_VERSION, redis.REDIS_VERSION_NUM}"),
        Frame::Array(vec![bulk("7.2.0"), Frame::Integer(0x070200)])
    );
    assert_eq!(
        eval("return redis.sha1hex('abc')"),
        bulk("a9993e364706816aba3e25717850c26c9cd0d89d")
    );
    assert_eq!(
        eval("return redis.sha1hex(1)"),
        bulk("356a192b7913b04c54574d18c28d46e6395428ab")
    );
    assert_eq!(
        eval("return redis.sha1hex({})"),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(
        eval("return redis.log(redis.LOG_WARNING, 'hello', 1, 2)"),
        Frame::Null
    );
    assert_eq!(eval("return redis.set_repl(redis.REPL_ALL)"), Frame::Null);
    assert_eq!(eval("return redis.replicate_commands()"), Frame::Integer(1));
    assert_eq!(eval("return redis.breakpoint()"), Frame::Null);
    assert_eq!(eval("return redis.debug('x')"), Frame::Null);
    assert_eq!(eval("return redis.setresp('3')"), Frame::Null);
    assert_eq!(
        eval("return redis.acl_check_cmd('set','a','b')"),
        Frame::Integer(1)
    );
}

#[test]
fn math_random_is_redis_generator() {
    // Redis 7.0.15: randomseed(1); random(100) -> 5; randomseed(42) -> 744526, 342702.
    assert_eq!(
        eval("math.randomseed(1); return math.random(100)"),
        Frame::Integer(5)
    );
    assert_eq!(
        eval("math.randomseed(42); return {math.random(1000000), math.random(1000000)}"),
        Frame::Array(vec![Frame::Integer(744526), Frame::Integer(342702)])
    );
    assert_eq!(
        eval("math.randomseed(7); local r = math.random() return r >= 0 and r < 1"),
        Frame::Integer(1)
    );
    assert_eq!(
        eval("math.randomseed(7); local r = math.random(5, 7) return r >= 5 and r <= 7"),
        Frame::Integer(1)
    );
    assert_eq!(
        eval("return math.random(0)"),
        err("ERR user_script:1: bad argument #1 to 'random' (interval is empty) script: 008bcb60f86ee36d26c67b641b46674578d9cba0, on @user_script:1.")
    );
}

#[test]
fn interrupts_stop_scripts_even_inside_pcall() {
    // Redis, SCRIPT KILL of each script: ERR Script killed by user with SCRIPT KILL...
    // script: <sha>, on @user_script:1.
    let cases = [
        ("while true do end", "694a5fe1ddb97a4c6a1bf299d9537c7d3d0f84e7"),
        ("while true do pcall(function() while true do end end) end", "3d7b0cfd4124d0a72b8a39e531e7c806bc453d3e"),
        (
            "local n = 0; while true do local ok, e = pcall(function() while true do end end); n = n + 1; if n > 5 then return e end end",
            "b13f3f77db8b15a8957104c9d56055f3bf02a1be",
        ),
    ];
    for (script, sha) in cases {
        let mut s = Setup::new();
        s.host.interrupt_after = Some(3);
        let expected = format!(
            "ERR Script killed by user with SCRIPT KILL... script: {sha}, on @user_script:1."
        );
        assert_eq!(s.eval(script), err(&expected), "{script}");
        assert_eq!(s.host.polls, 4, "{script}");
    }
    // xpcall and coroutines cannot hold on to it either.
    for script in [
        "while true do xpcall(function() while true do end end, function(e) return e end) end",
        "while true do local co = coroutine.create(function() while true do end end); coroutine.resume(co) end",
        "while true do local f = coroutine.wrap(function() while true do end end); pcall(f) end",
    ] {
        let mut s = Setup::new();
        s.host.interrupt_after = Some(1);
        match s.eval(script) {
            Frame::Error(e) => assert!(e.starts_with(b"ERR Script killed by user"), "{script}"),
            other => panic!("{script}: {other:?}"),
        }
    }
    // The engine is usable afterwards and the interruption does not stick.
    let mut s = Setup::new();
    s.host.interrupt_after = Some(0);
    assert!(matches!(s.eval("while true do end"), Frame::Error(_)));
    s.host.interrupt_after = None;
    assert_eq!(
        s.eval("local n = 0 for i = 1, 300000 do n = n + 1 end return n"),
        Frame::Integer(300000)
    );
}

#[test]
fn script_cache_across_engines() {
    let cache = ScriptCache::new();
    let mut first = Engine::new().unwrap();
    let mut second = Engine::new().unwrap();
    let mut host = FakeHost::default();
    let script = first
        .prepare(&cache, b"#!lua flags=no-writes\nreturn ARGV[1]")
        .unwrap();
    assert!(script.flags.declared && script.flags.no_writes);
    assert_eq!(
        script.sha,
        sha1_hex(b"#!lua flags=no-writes\nreturn ARGV[1]")
    );
    // Another engine runs it by name, compiling it on first use.
    let by_name = cache
        .get(script.sha.to_ascii_uppercase().as_bytes())
        .unwrap();
    assert_eq!(
        second.run(
            &by_name,
            no_args(),
            OwnedArgv::new(&["v"]).argv(),
            &mut host
        ),
        bulk("v")
    );
    assert!(cache.contains(script.sha.as_bytes()));
    assert_eq!(cache.len(), 1);
    // A body that does not compile is not cached.
    assert!(first.prepare(&cache, b"return +").is_err());
    assert_eq!(cache.len(), 1);
    cache.flush();
    assert!(cache.get(script.sha.as_bytes()).is_none());
    assert!(cache.is_empty());
    // Scripts added after the flush run; compiled copies from before are dropped.
    let again = second.prepare(&cache, b"return 2").unwrap();
    assert_eq!(
        second.run(&again, no_args(), no_args(), &mut host),
        Frame::Integer(2)
    );
    assert_eq!(second.scripts.len(), 1);
}

fn load(s: &mut Setup, libs: &FunctionLibraries, code: &str) -> Result<String, String> {
    s.engine.function_load(libs, code.as_bytes(), false)
}

fn fcall(
    s: &mut Setup,
    libs: &FunctionLibraries,
    name: &str,
    keys: &[&str],
    argv: &[&str],
) -> Frame {
    let keys = OwnedArgv::new(keys);
    let argv = OwnedArgv::new(argv);
    s.engine
        .fcall(libs, name.as_bytes(), keys.argv(), argv.argv(), &mut s.host)
}

#[test]
fn function_load_and_call() {
    let mut s = Setup::new();
    let libs = FunctionLibraries::new();
    assert_eq!(
        load(&mut s, &libs, "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return {keys[1], args[1]} end)"),
        Ok("mylib".to_string())
    );
    assert_eq!(
        fcall(&mut s, &libs, "f1", &["k"], &["a"]),
        Frame::Array(vec![bulk("k"), bulk("a")])
    );
    assert_eq!(
        load(
            &mut s,
            &libs,
            "#!lua name=mylib\nredis.register_function('f1', function(keys, args) return 1 end)"
        ),
        Err("ERR Library 'mylib' already exists".to_string())
    );
    assert_eq!(
        load(
            &mut s,
            &libs,
            "#!lua name=other\nredis.register_function('f1', function(keys, args) return 1 end)"
        ),
        Err("ERR Function f1 already exists".to_string())
    );
    // REPLACE swaps the library, and every engine sees the new code.
    assert_eq!(
        s.engine.function_load(
            &libs,
            b"#!lua name=mylib\nredis.register_function('f1', function() return 2 end)",
            true
        ),
        Ok("mylib".to_string())
    );
    assert_eq!(fcall(&mut s, &libs, "f1", &[], &[]), Frame::Integer(2));
    let mut other = Setup::new();
    assert_eq!(fcall(&mut other, &libs, "f1", &[], &[]), Frame::Integer(2));
    assert_eq!(
        fcall(&mut s, &libs, "nosuch", &[], &[]),
        err("ERR Function not found")
    );
    // Redis 7.0.15: function names match in any case, library names exactly.
    assert_eq!(fcall(&mut s, &libs, "F1", &[], &[]), Frame::Integer(2));
    assert_eq!(
        load(
            &mut s,
            &libs,
            "#!lua name=Other\nredis.register_function('F1', function() return 3 end)"
        ),
        Err("ERR Function F1 already exists".to_string())
    );
    assert_eq!(
        load(
            &mut s,
            &libs,
            "#!lua name=MYLIB\nredis.register_function('g1', function() return 3 end)"
        ),
        Ok("MYLIB".to_string())
    );
    assert_eq!(
        libs.delete(b"Mylib"),
        Err("ERR Library not found".to_string())
    );
    assert_eq!(
        load(&mut s, &libs, "#!LUA name=x4\nredis.register_function('fn4', function() return 4 end)\nredis.register_function('FN4', function() return 5 end)"),
        Ok("x4".to_string())
    );
    // Upvalues keep their state between calls (Redis: 6 then 7).
    load(&mut s, &libs, "#!lua name=p6\nlocal x = 5\nredis.register_function('p6', function(k,a) x = x + 1 return x end)").unwrap();
    assert_eq!(fcall(&mut s, &libs, "p6", &[], &[]), Frame::Integer(6));
    assert_eq!(fcall(&mut s, &libs, "p6", &[], &[]), Frame::Integer(7));
    // Library helpers defined at load time see the script globals when called later.
    load(&mut s, &libs, "#!lua name=h\nlocal function up(s) return string.upper(s) end\nredis.register_function('up', function(k, a) return up(a[1]) end)").unwrap();
    assert_eq!(fcall(&mut s, &libs, "up", &[], &["abc"]), bulk("ABC"));
}

#[test]
fn function_load_errors_match_redis() {
    let mut s = Setup::new();
    let libs = FunctionLibraries::new();
    let cases = [
        ("#!lua name=empty\nlocal x = 1", "ERR No functions registered"),
        ("redis.register_function('g', function() return 1 end)", "ERR Missing library metadata"),
        ("#!lua name=x\nredis.call('PING')", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'call'"),
        ("#!lua name=x\nreturn 1 +", "ERR Error compiling function: user_function:2: unexpected symbol near '<eof>'"),
        ("#!lua name=x\nerror('boom')", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'error'"),
        ("#!lua name=z\nx = 1", "ERR Error registering functions: ERR user_function:2: Attempt to modify a readonly table"),
        ("#!lua name=z\nlocal a = os", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'os'"),
        ("#!lua name=x\nlocal _ = redis.setresp", "ERR Error registering functions: ERR user_function:2: Script attempted to access nonexistent global variable 'setresp'"),
        ("#!lua name=x\nredis.register_function('g', function() return 1 end)\nredis.register_function('g', function() return 1 end)", "ERR Error registering functions: ERR Function already exists in the library"),
        ("#!lua name=x\nredis.register_function{function_name='g', callback=function() return 1 end, flags={'no-writes','bogus'}}", "ERR Error registering functions: ERR unknown flag given"),
        ("#!lua name=x\nredis.register_function{function_name='g', callback=function() return 1 end, foo=1}", "ERR Error registering functions: ERR unknown argument given to redis.register_function"),
        ("#!lua name=x\nredis.register_function{function_name='g'}", "ERR Error registering functions: ERR redis.register_function must get a callback argument"),
        ("#!lua name=x\nredis.register_function{callback=function() return 1 end}", "ERR Error registering functions: ERR redis.register_function must get a function name argument"),
        ("#!lua name=x\nredis.register_function('g')", "ERR Error registering functions: ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments)."),
        ("#!lua name=x\nredis.register_function()", "ERR Error registering functions: ERR wrong number of arguments to redis.register_function"),
        ("#!lua name=x\nredis.register_function(1, 2)", "ERR Error registering functions: ERR second argument to redis.register_function must be a function"),
        ("#!lua name=x\nredis.register_function{function_name='g', callback=function() return 1 end, flags='no-writes'}", "ERR Error registering functions: ERR flags argument to redis.register_function must be a table representing function flags"),
        ("#!lua name=ok\nredis.register_function('bad name', function() return 1 end)", "ERR Error registering functions: ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
        ("#!lua name=z4\nredis.register_function('', function() return 1 end)", "ERR Error registering functions: ERR Library names can only contain letters, numbers, or underscores(_) and must be at least one character long"),
        ("#!lua name=t\nlocal i = 0 while true do i = i + 1 end", "ERR Error registering functions: ERR FUNCTION LOAD timeout"),
    ];
    for (code, expected) in cases {
        assert_eq!(
            load(&mut s, &libs, code),
            Err(expected.to_string()),
            "{code}"
        );
    }
    assert_eq!(libs.counts(), (0, 0));
}

#[test]
fn function_runtime_errors_and_flags() {
    let mut s = Setup::new();
    let libs = FunctionLibraries::new();
    load(&mut s, &libs, "#!lua name=y\nredis.register_function{function_name='h', callback=function(k,a) return redis.call('nosuch') end, flags={'no-writes'}, description='desc'}\nredis.register_function('h2', function(k, a) error('bad') end)\nredis.register_function('h3', function(k, a) return x end)").unwrap();
    assert_eq!(
        fcall(&mut s, &libs, "h", &[], &[]),
        err("ERR Unknown Redis command called from script script: h, on @user_function:2.")
    );
    assert_eq!(
        fcall(&mut s, &libs, "h2", &[], &[]),
        err("ERR user_function:3: bad script: h2, on @user_function:3.")
    );
    assert_eq!(
        fcall(&mut s, &libs, "h3", &[], &[]),
        err("ERR user_function:4: Script attempted to access nonexistent global variable 'x' script: h3, on @user_function:4.")
    );
    let flags = libs.function_flags(b"h").unwrap();
    assert!(flags.no_writes && !flags.allow_oom);
    let library = libs.library("y").unwrap();
    let listed: Vec<(&str, Option<&str>, Vec<&str>)> = library
        .functions
        .iter()
        .map(|f| (f.name.as_str(), f.description.as_deref(), f.flags.names()))
        .collect();
    assert_eq!(
        listed,
        [
            ("h", Some("desc"), vec!["no-writes"]),
            ("h2", None, vec![]),
            ("h3", None, vec![])
        ]
    );
    load(&mut s, &libs, "#!lua name=z5\nredis.register_function{function_name='q', callback=function() return 1 end, flags={'no-writes','allow-oom','allow-stale','no-cluster','allow-cross-slot-keys'}}").unwrap();
    assert_eq!(
        libs.function_flags(b"q").unwrap().names(),
        [
            "no-writes",
            "allow-oom",
            "allow-stale",
            "no-cluster",
            "allow-cross-slot-keys"
        ]
    );
    // At run time register_function is gone and loadstring reads as nil.
    load(&mut s, &libs, "#!lua name=q5\nredis.register_function('q5', function() return redis.register_function('zz', function() end) end)\nredis.register_function('q6', function() return loadstring end)").unwrap();
    assert_eq!(
        fcall(&mut s, &libs, "q5", &[], &[]),
        err("ERR user_function:2: attempt to call field 'register_function' (a nil value) script: q5, on @user_function:2.")
    );
    assert_eq!(fcall(&mut s, &libs, "q6", &[], &[]), Frame::Null);
    assert_eq!(
        libs.delete(b"nosuch"),
        Err("ERR Library not found".to_string())
    );
    libs.delete(b"y").unwrap();
    assert_eq!(
        fcall(&mut s, &libs, "h", &[], &[]),
        err("ERR Function not found")
    );
    assert_eq!(libs.counts(), (2, 3));
    libs.flush();
    assert_eq!(libs.counts(), (0, 0));
}

#[test]
fn function_dump_and_restore() {
    let mut s = Setup::new();
    let libs = FunctionLibraries::new();
    load(
        &mut s,
        &libs,
        "#!lua name=a\nredis.register_function('fa', function() return 'a' end)",
    )
    .unwrap();
    load(&mut s, &libs, "#!lua name=b\nredis.register_function{function_name='fb', callback=function() return 'b' end, flags={'no-writes'}}").unwrap();
    let payload = libs.dump();
    assert_eq!(decode_dump(&payload).unwrap().len(), 2);

    // Into an empty registry through another engine.
    let restored = FunctionLibraries::new();
    let mut other = Setup::new();
    other
        .engine
        .function_restore(&restored, &payload, RestorePolicy::Append)
        .unwrap();
    assert_eq!(fcall(&mut other, &restored, "fa", &[], &[]), bulk("a"));
    assert_eq!(fcall(&mut other, &restored, "fb", &[], &[]), bulk("b"));
    assert!(restored.function_flags(b"fb").unwrap().no_writes);
    let codes: Vec<_> = restored
        .libraries()
        .iter()
        .map(|l| l.code.clone())
        .collect();
    let originals: Vec<_> = libs.libraries().iter().map(|l| l.code.clone()).collect();
    assert_eq!(codes, originals);

    // APPEND refuses existing libraries (Redis 7.0.15's text), REPLACE and FLUSH do not.
    assert_eq!(
        other
            .engine
            .function_restore(&restored, &payload, RestorePolicy::Append),
        Err("ERR Library a already exists".to_string())
    );
    other
        .engine
        .function_restore(&restored, &payload, RestorePolicy::Replace)
        .unwrap();
    load(
        &mut other,
        &restored,
        "#!lua name=c\nredis.register_function('fc', function() return 'c' end)",
    )
    .unwrap();
    other
        .engine
        .function_restore(&restored, &payload, RestorePolicy::Flush)
        .unwrap();
    assert_eq!(restored.counts(), (2, 2));
    assert_eq!(
        fcall(&mut other, &restored, "fc", &[], &[]),
        err("ERR Function not found")
    );

    // Damaged payloads are refused with Redis's text.
    let bad = "ERR DUMP payload version or checksum are wrong".to_string();
    assert_eq!(decode_dump(b"garbage"), Err(bad.clone()));
    let mut flipped = payload.to_vec();
    flipped[10] ^= 1;
    assert_eq!(decode_dump(&flipped), Err(bad.clone()));
    assert_eq!(decode_dump(&payload[..payload.len() - 1]), Err(bad.clone()));
    assert_eq!(decode_dump(&[]), Err(bad));
    // An empty registry round-trips.
    assert_eq!(
        decode_dump(&FunctionLibraries::new().dump()).unwrap(),
        Vec::<Bytes>::new()
    );
}
