//! Redis 7 functions end to end (issue 17): FUNCTION LOAD/LIST/STATS/DUMP/RESTORE/FLUSH/
//! DELETE/KILL and FCALL/FCALL_RO with Redis 7.0.15's replies, and libraries surviving
//! restarts through the log, its rewrite and a snapshot.

use std::time::{Duration, Instant};

use crate::util::*;

const LIBRARY: &str = "#!lua name=mylib\n\
redis.register_function('myfunc', function(keys, args) return redis.call('incr', keys[1]) end)\n\
redis.register_function{function_name='ro', callback=function(keys, args) return 1 end, flags={'no-writes'}, description='read only'}";

#[tokio::test]
async fn functions_load_list_call_and_errors() {
    let server = start_server().await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]).await, bulk("mylib"));
    assert_eq!(c.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(1));
    assert_eq!(
        c.cmd(&["FCALL_RO", "myfunc", "1", "k"]).await,
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    assert_eq!(c.cmd(&["FCALL_RO", "ro", "0"]).await, int(1));
    assert_eq!(
        c.cmd(&["FCALL", "nosuch", "0"]).await,
        err("ERR Function not found")
    );
    // The reply shapes of Redis 7.0.15 (RESP2: maps are flat arrays, sets arrays).
    let function = |name: &str, description: Frame, flags: &[&str]| {
        Frame::Array(vec![
            bulk("name"),
            bulk(name),
            bulk("description"),
            description,
            bulk("flags"),
            bulks(flags),
        ])
    };
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST", "WITHCODE"]).await,
        Frame::Array(vec![Frame::Array(vec![
            bulk("library_name"),
            bulk("mylib"),
            bulk("engine"),
            bulk("LUA"),
            bulk("functions"),
            Frame::Array(vec![
                function("myfunc", Frame::Null, &[]),
                function("ro", bulk("read only"), &["no-writes"]),
            ]),
            bulk("library_code"),
            bulk(LIBRARY),
        ])])
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "LIST", "LIBRARYNAME", "other*"]).await,
        Frame::Array(vec![])
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "STATS"]).await,
        Frame::Array(vec![
            bulk("running_script"),
            Frame::Null,
            bulk("engines"),
            Frame::Array(vec![
                bulk("LUA"),
                Frame::Array(vec![
                    bulk("libraries_count"),
                    int(1),
                    bulk("functions_count"),
                    int(2),
                ]),
            ]),
        ])
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "DELETE", "nosuch"]).await,
        err("ERR Library not found")
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "KILL"]).await,
        err("NOTBUSY No scripts in execution right now.")
    );
    assert_eq!(
        c.cmd(&[
            "FUNCTION",
            "LOAD",
            "#!lua name=mylib\nredis.register_function('x', function() return 1 end)"
        ])
        .await,
        err("ERR Library 'mylib' already exists")
    );
    assert_eq!(
        c.cmd(&["FUNCTION", "RESTORE", "abc"]).await,
        err("ERR DUMP payload version or checksum are wrong")
    );
    // DUMP, FLUSH, RESTORE round trip; another connection (thread) runs the functions.
    let dump = c.cmd(&["FUNCTION", "DUMP"]).await;
    let Frame::Bulk(payload) = dump else {
        panic!("DUMP replied {dump:?}");
    };
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]).await, ok());
    assert_eq!(
        c.cmd(&["FCALL", "myfunc", "1", "k"]).await,
        err("ERR Function not found")
    );
    let mut restore = vec![b"FUNCTION".to_vec(), b"RESTORE".to_vec(), payload.to_vec()];
    assert_eq!(c.cmd(&restore).await, ok());
    restore.push(b"APPEND".to_vec());
    // Redis words this one without quotes.
    assert_eq!(
        c.cmd(&restore).await,
        err("ERR Library mylib already exists")
    );
    let mut other = Raw::connect(server.addr()).await;
    assert_eq!(other.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(2));
}

#[tokio::test]
async fn function_libraries_survive_restarts_through_the_log_and_its_rewrite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]).await, bulk("mylib"));
    assert_eq!(c.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(1));
    server.shutdown();
    server.stopped().await;

    // From the log: FUNCTION LOAD replays.
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(2));
    // Rewritten: the base snapshot carries the libraries, the new log does not.
    assert_eq!(
        c.cmd(&["BGREWRITEAOF"]).await,
        simple("Background append only file rewriting started")
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info = text_of(&c.cmd(&["INFO", "persistence"]).await);
        if info_field(&info, "aof_rewrite_in_progress").as_deref() == Some("0") {
            break;
        }
        assert!(Instant::now() < deadline, "rewrite never finished:\n{info}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.shutdown();
    server.stopped().await;
    assert!(
        !incr_logs_text(dir.path()).contains("FUNCTION"),
        "the log after the rewrite still holds FUNCTION LOAD"
    );
    let server = start_logged_server(dir.path()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(3));
}

#[tokio::test]
async fn function_libraries_survive_a_restart_from_a_snapshot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_path_buf();
    let configure = move |config: &mut kvserver::config::Config| config.dir = path.clone();
    let server = start_server_with(configure.clone()).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIBRARY]).await, bulk("mylib"));
    assert_eq!(c.cmd(&["SET", "k", "41"]).await, ok());
    assert_eq!(c.cmd(&["SAVE"]).await, ok());
    server.shutdown();
    server.stopped().await;
    let server = start_server_with(configure).await;
    let mut c = Raw::connect(server.addr()).await;
    assert_eq!(c.cmd(&["FCALL", "myfunc", "1", "k"]).await, int(42));
    assert_eq!(c.cmd(&["FCALL_RO", "ro", "0"]).await, int(1));
}
