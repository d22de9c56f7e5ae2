//! ACL (issue 19, section 2): users and their rules, the checks at the top level, in MULTI,
//! in scripts and on channels, the ACL commands, and the ACL file. The transcript tests run
//! the same sessions against a real redis-server (when installed) and compare every reply,
//! masking only what legitimately differs (random passwords, client ids, log timings).

use std::net::SocketAddr;

use protocol::Frame;

use crate::differential::start_redis_server;
use crate::util::*;

/// Sorts the single-command rules (`+get`, `-hget`) of each selector in a rules text: Redis
/// lists them in its hash table's order, which changes from run to run.
fn normalise_rules(text: &str) -> String {
    text.split(" (")
        .map(|segment| {
            let mut tokens: Vec<&str> = segment.split(' ').collect();
            let single = |t: &str| (t.starts_with('+') || t.starts_with('-')) && !t.contains('@');
            let positions: Vec<usize> = (0..tokens.len()).filter(|&i| single(tokens[i])).collect();
            let mut sorted: Vec<&str> = positions
                .iter()
                .map(|&i| tokens[i].trim_end_matches(')'))
                .collect();
            sorted.sort_unstable();
            let closes = segment.ends_with(')');
            for (&i, token) in positions.iter().zip(sorted) {
                tokens[i] = token;
            }
            let mut joined = tokens.join(" ");
            if closes && !joined.ends_with(')') {
                joined.push(')');
            }
            joined
        })
        .collect::<Vec<_>>()
        .join(" (")
}

/// [`normalise_rules`] on every bulk string inside `frame`.
fn normalise_frame(frame: Frame) -> Frame {
    match frame {
        Frame::Bulk(text) => Frame::Bulk(normalise_rules(&String::from_utf8_lossy(&text)).into()),
        Frame::Array(items) => Frame::Array(items.into_iter().map(normalise_frame).collect()),
        other => other,
    }
}

/// Replaces what differs between two servers by nature with placeholders: client ids, the
/// time and client line of ACL LOG entries, random passwords (kept: their length), the order
/// of single-command rules.
fn mask(args: &[&str], reply: Frame) -> Frame {
    let upper: Vec<String> = args.iter().map(|a| a.to_ascii_uppercase()).collect();
    match upper
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["CLIENT", "ID"] => simple("<id>"),
        ["ACL", "GETUSER", ..] | ["ACL", "LIST"] => normalise_frame(reply),
        ["ACL", "GENPASS", ..] => match reply {
            Frame::Bulk(text) => simple(&format!("<{} hex digits>", text.len())),
            other => other,
        },
        ["ACL", "CAT", _] => match reply {
            Frame::Array(mut items) => {
                items.sort_by_key(|f| format!("{f:?}"));
                Frame::Array(items)
            }
            other => other,
        },
        ["ACL", "LOG", ..] => match reply {
            Frame::Array(entries) => Frame::Array(
                entries
                    .into_iter()
                    .map(|entry| match entry {
                        Frame::Array(fields) => Frame::Array(
                            fields
                                .chunks(2)
                                .flat_map(|pair| {
                                    let name = pair[0].clone();
                                    let value = match text_of(&name).as_str() {
                                        "age-seconds" | "client-info" => simple("<masked>"),
                                        _ => pair[1].clone(),
                                    };
                                    [name, value]
                                })
                                .collect(),
                        ),
                        other => other,
                    })
                    .collect(),
            ),
            other => other,
        },
        _ => reply,
    }
}

/// Runs `commands` on `c`, masked replies appended to `out`.
async fn run(c: &mut Raw, out: &mut Vec<Frame>, commands: &[&[&str]]) {
    for args in commands {
        let reply = c.cmd(args).await;
        out.push(mask(args, reply));
    }
}

/// One session of ACL commands and checks, as an administrator and as restricted users.
async fn acl_transcript(addr: SocketAddr) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut admin = Raw::connect(addr).await;
    run(
        &mut admin,
        &mut out,
        &[
            &["ACL", "WHOAMI"],
            &["ACL", "LIST"],
            &["ACL", "USERS"],
            &[
                "ACL",
                "SETUSER",
                "alice",
                "on",
                ">p1",
                "~cache:*",
                "%R~ro:*",
                "&chan*",
                "+get",
                "+set",
                "-set",
                "+@hash",
                "-hget",
                "+client|id",
                "resetchannels",
                "&n*",
            ],
            &["ACL", "GETUSER", "alice"],
            &["ACL", "LIST"],
            &["ACL", "SETUSER", "bob"],
            &["ACL", "SETUSER", "bob", "(+get", "~x*)", "(+set ~y*)"],
            &["ACL", "GETUSER", "bob"],
            &["ACL", "LIST"],
            // Rule errors, and a failed SETUSER changes nothing.
            &["ACL", "SETUSER", "x", "foo"],
            &["ACL", "SETUSER", "x", "+nosuch"],
            &["ACL", "SETUSER", "x", "+@nosuch"],
            &["ACL", "SETUSER", "x", "#abc"],
            &["ACL", "SETUSER", "x", "<nopw"],
            &["ACL", "SETUSER", "x", "%X~a"],
            &["ACL", "SETUSER", "x", "(+get"],
            &["ACL", "SETUSER", "x", "allkeys", "~a"],
            &["ACL", "SETUSER", "x", "allchannels", "&a"],
            &["ACL", "SETUSER", "x", "+client|nosuch"],
            &["ACL", "SETUSER", "alice", "off", "+nosuch"],
            &["ACL", "GETUSER", "x"],
            &["ACL", "SETUSER", "x", "nopass", ">a"],
            &["ACL", "GETUSER", "x"],
            &[
                "ACL",
                "SETUSER",
                "x",
                ">a",
                "nopass",
                "%R~k",
                "%W~k",
                "+select|0",
            ],
            &["ACL", "LIST"],
            &["ACL", "SETUSER", "x", "reset"],
            &["ACL", "LIST"],
            &[
                "ACL",
                "SETUSER",
                "x",
                "+@all",
                "-client|kill",
                "allkeys",
                "allchannels",
            ],
            &["ACL", "GETUSER", "x"],
            &["ACL", "SETUSER", "x", "-@all", "+client|id", "+client"],
            &["ACL", "GETUSER", "x"],
            &["ACL", "DELUSER", "default"],
            &["ACL", "DELUSER", "nobody", "x"],
            &["ACL", "USERS"],
            &["ACL", "GETUSER", "nobody"],
            &["ACL", "CAT"],
            &["ACL", "CAT", "hash"],
            &["ACL", "CAT", "nosuch"],
            &["ACL", "GENPASS"],
            &["ACL", "GENPASS", "5"],
            &["ACL", "GENPASS", "0"],
            &["ACL", "GENPASS", "5000"],
            &["ACL", "LOAD"],
            &["ACL", "SAVE"],
            &["ACL", "LOG", "nope"],
            &["ACL"],
            &["ACL", "NOSUCH"],
            &[
                "ACL",
                "SETUSER",
                "r",
                "on",
                ">pw",
                "~k*",
                "-@all",
                "+get",
                "+set",
                "+multi",
                "+exec",
                "+eval",
                "+publish",
                "+subscribe",
                "+psubscribe",
                "&c*",
                "+client|id",
            ],
            &["ACL", "DRYRUN", "r", "get", "k1"],
            &["ACL", "DRYRUN", "r", "get", "z1"],
            &["ACL", "DRYRUN", "r", "del", "k1"],
            &["ACL", "DRYRUN", "r", "client", "id"],
            &["ACL", "DRYRUN", "r", "client", "kill", "x"],
            &["ACL", "DRYRUN", "nouser", "get", "x"],
            &["ACL", "DRYRUN", "r", "nosuchcmd"],
            &["ACL", "DRYRUN", "r", "get"],
            &["ACL", "DRYRUN", "r", "publish", "c1", "m"],
            &["ACL", "DRYRUN", "r", "publish", "x", "m"],
            &["ACL", "LOG", "RESET"],
        ],
    )
    .await;

    // As the restricted user: top level, MULTI, scripts, channels.
    let mut r = Raw::connect(addr).await;
    run(
        &mut r,
        &mut out,
        &[
            &["AUTH", "r", "wrong"],
            &["AUTH", "nobody", "pw"],
            &["AUTH", "r", "pw"],
            &["ACL", "WHOAMI"],
            &["SET", "k1", "v"],
            &["GET", "k1"],
            &["GET", "z1"],
            &["DEL", "k1"],
            &["CLIENT", "ID"],
            &["CLIENT", "KILL", "ID", "1"],
            &["PUBLISH", "c1", "m"],
            &["PUBLISH", "x", "m"],
            &["PSUBSCRIBE", "c*x"],
            &["MULTI"],
            &["GET", "k1"],
            &["GET", "z1"],
            &["DEL", "k1"],
            &["EXEC"],
            &["MULTI"],
            &["GET", "k1"],
            &["EXEC"],
            &["EVAL", "return redis.call('get','k1')", "0"],
            &["EVAL", "return redis.call('get','z1')", "0"],
            &["EVAL", "return redis.call('del','k1')", "0"],
            &["EVAL", "return redis.pcall('del','k1')", "0"],
            &["EVAL", "return redis.pcall('publish','x','m')", "0"],
            &["EVAL", "return redis.call('get','k1')", "1", "z"],
            // Subcommand and first-argument rules.
            &["SELECT", "0"],
        ],
    )
    .await;
    run(
        &mut admin,
        &mut out,
        &[
            &["ACL", "SETUSER", "r", "+select|0"],
            &["ACL", "LIST"],
            &["ACL", "LOG"],
            &["ACL", "LOG", "2"],
        ],
    )
    .await;
    run(&mut r, &mut out, &[&["SELECT", "0"], &["SELECT", "1"]]).await;
    // Changes reach the logged-in client at its next command.
    run(&mut admin, &mut out, &[&["ACL", "SETUSER", "r", "-get"]]).await;
    run(&mut r, &mut out, &[&["GET", "k1"]]).await;
    run(
        &mut admin,
        &mut out,
        &[&["ACL", "SETUSER", "r", "+get", "off"], &["INFO", "nosuch"]],
    )
    .await;
    // Off: logged-in clients go on, new logins fail.
    run(&mut r, &mut out, &[&["GET", "k1"]]).await;
    let mut late = Raw::connect(addr).await;
    run(&mut late, &mut out, &[&["AUTH", "r", "pw"]]).await;
    out
}

#[tokio::test]
async fn acl_commands_and_checks_match_redis() {
    let server = start_server().await;
    let ours = acl_transcript(server.addr()).await;
    assert!(ours.contains(&err(
        "NOPERM this user has no permissions to run the 'del' command"
    )));
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: ACL transcript not compared");
        return;
    };
    let theirs = acl_transcript(redis.addr).await;
    for (i, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert_eq!(a, b, "reply {i} (redis first)");
    }
    assert_eq!(theirs.len(), ours.len());
}

/// Deleting a user disconnects its clients; narrowing its channels disconnects its
/// subscribers; other users' clients are untouched.
async fn disconnect_transcript(addr: SocketAddr) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut admin = Raw::connect(addr).await;
    run(
        &mut admin,
        &mut out,
        &[
            &["ACL", "SETUSER", "u", "on", ">pw", "~*", "+@all"],
            &["ACL", "SETUSER", "v", "on", ">pw", "~k*", "+@all", "&ch"],
        ],
    )
    .await;
    let mut u = Raw::connect(addr).await;
    let mut v = Raw::connect(addr).await;
    let mut bystander = Raw::connect(addr).await;
    run(
        &mut u,
        &mut out,
        &[&["AUTH", "u", "pw"], &["CLIENT", "INFO"]],
    )
    .await;
    out.pop();
    run(
        &mut v,
        &mut out,
        &[
            &["AUTH", "v", "pw"],
            &["GET", "zz"],
            &["PUBLISH", "other", "x"],
            &["SUBSCRIBE", "other"],
            &["SUBSCRIBE", "ch"],
        ],
    )
    .await;
    run(&mut admin, &mut out, &[&["ACL", "DELUSER", "u"]]).await;
    out.push(Frame::Boolean(u.try_read().await.is_none()));
    run(
        &mut admin,
        &mut out,
        &[&["ACL", "SETUSER", "v", "resetchannels"]],
    )
    .await;
    out.push(Frame::Boolean(v.try_read().await.is_none()));
    run(&mut bystander, &mut out, &[&["PING"], &["ACL", "LOG"]]).await;
    out
}

#[tokio::test]
async fn deleting_users_and_narrowing_channels_disconnect_as_in_redis() {
    let server = start_server().await;
    let ours = disconnect_transcript(server.addr()).await;
    assert!(ours.contains(&Frame::Boolean(true)));
    let Some(redis) = start_redis_server().await else {
        eprintln!("redis-server not installed: disconnect transcript not compared");
        return;
    };
    let theirs = disconnect_transcript(redis.addr).await;
    assert_eq!(theirs, ours, "redis first");
}

#[tokio::test]
async fn users_from_flags_and_the_acl_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("users.acl");
    std::fs::write(
        &path,
        "# two users\nuser default on nopass ~* &* +@all\n\
         user reader on #ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb \
         %R~* resetchannels -@all +@read +@connection\n",
    )
    .expect("write acl file");
    let server = start_server_with(|config| config.aclfile = Some(path.clone())).await;
    let addr = server.addr();
    let mut reader = Raw::connect(addr).await;
    assert_eq!(reader.cmd(&["AUTH", "reader", "a"]).await, ok());
    assert_eq!(reader.cmd(&["GET", "k"]).await, nil());
    assert_eq!(
        reader.cmd(&["SET", "k", "v"]).await,
        err("NOPERM this user has no permissions to run the 'set' command")
    );
    // SAVE writes ACL LIST; a changed file LOADs all or nothing.
    let mut admin = Raw::connect(addr).await;
    assert_eq!(
        admin
            .cmd(&["ACL", "SETUSER", "writer", "on", ">w", "~w:*", "+set"])
            .await,
        ok()
    );
    assert_eq!(admin.cmd(&["ACL", "SAVE"]).await, ok());
    let saved = std::fs::read_to_string(&path).expect("saved file");
    let listed = array_items(admin.cmd(&["ACL", "LIST"]).await);
    assert_eq!(saved.lines().count(), listed.len());
    for (line, item) in saved.lines().zip(&listed) {
        assert_eq!(line, text_of(item));
    }
    std::fs::write(&path, format!("{saved}user broken on +nosuch\n")).expect("write");
    let refused = admin.cmd(&["ACL", "LOAD"]).await;
    assert!(
        matches!(&refused, Frame::Error(text)
            if String::from_utf8_lossy(text).contains(":4: Error in applying operation '+nosuch'")),
        "{refused:?}"
    );
    assert_eq!(
        admin.cmd(&["ACL", "USERS"]).await,
        bulks(&["default", "reader", "writer"])
    );
    std::fs::write(&path, saved.replace("user writer", "user scribe")).expect("write");
    assert_eq!(admin.cmd(&["ACL", "LOAD"]).await, ok());
    assert_eq!(
        admin.cmd(&["ACL", "USERS"]).await,
        bulks(&["default", "reader", "scribe"])
    );
    // The reader's connection survives the load and keeps its rules.
    assert_eq!(reader.cmd(&["GET", "k"]).await, nil());
    assert_eq!(
        reader.cmd(&["ACL", "WHOAMI"]).await,
        err("NOPERM this user has no permissions to run the 'acl|whoami' command")
    );
    drop(server);

    // --user, as Redis's `user` directive; not together with an ACL file.
    let server = start_server_with(|config| {
        config.users = vec!["app on >s3cret ~app:* +@all".into()];
        config.requirepass = "root".into();
    })
    .await;
    let mut app = Raw::connect(server.addr()).await;
    assert_eq!(
        app.cmd(&["GET", "app:1"]).await,
        err("NOAUTH Authentication required.")
    );
    assert_eq!(app.cmd(&["AUTH", "app", "s3cret"]).await, ok());
    assert_eq!(app.cmd(&["SET", "app:1", "x"]).await, ok());
    assert_eq!(
        app.cmd(&["SET", "other", "x"]).await,
        err("NOPERM this user has no permissions to access one of the keys used as arguments")
    );
    let info = text_of(&app.cmd(&["INFO", "stats"]).await);
    assert_eq!(
        info_field(&info, "acl_access_denied_key").as_deref(),
        Some("1")
    );
    let both = kvserver::start(
        kvserver::Config {
            port: 0,
            save: Default::default(),
            aclfile: Some(path.clone()),
            users: vec!["x on".into()],
            ..kvserver::Config::default()
        },
        None,
    )
    .await;
    assert!(
        both.is_err(),
        "--user and --aclfile together must be refused"
    );
}

#[tokio::test]
async fn clients_log_in_as_users() {
    let server = start_server_with(|config| {
        config.users = vec!["alice on >wonder ~* &* +@all -flushall".into()];
    })
    .await;
    let port = server.addr().port();
    let client =
        redis::Client::open(format!("redis://alice:wonder@127.0.0.1:{port}/")).expect("url");
    let mut con = client
        .get_multiplexed_async_connection()
        .await
        .expect("logs in as alice");
    let whoami: String = redis::cmd("ACL")
        .arg("WHOAMI")
        .query_async(&mut con)
        .await
        .expect("whoami");
    assert_eq!(whoami, "alice");
    let refused: redis::RedisResult<()> = redis::cmd("FLUSHALL").query_async(&mut con).await;
    let error = refused.expect_err("FLUSHALL refused");
    assert_eq!(error.code(), Some("NOPERM"), "{error:?}");

    let Some(cli) = require_tool("redis-cli") else {
        return;
    };
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(cli)
            .args([
                "-p",
                &port.to_string(),
                "--user",
                "alice",
                "--pass",
                "wonder",
            ])
            .args(["--no-auth-warning", "ACL", "WHOAMI"])
            .output()
            .expect("run redis-cli")
    })
    .await
    .expect("redis-cli task");
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "alice");
}
