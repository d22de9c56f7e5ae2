//! The help table kvcli builds offline from the command catalogue must say what the server's
//! `COMMAND DOCS` says (both come from `protocol::catalogue`; this checks the two readers).

use kvcli::commands::builtin_table;
use kvcli::connection::Target;
use kvcli::docs::CommandDoc;
use kvcli::hints::ArgSpec;
use kvcli::session::{Session, Settings};

use crate::util::TestServer;

fn server_table(server: &TestServer, resp3: bool) -> kvcli::docs::HelpTable {
    let settings = Settings {
        target: Target {
            host: "127.0.0.1".to_owned(),
            port: server.port,
        },
        connect_timeout: None,
        auth: None,
        db: 0,
        resp3,
        tls: None,
    };
    let mut session = Session::new(settings, true);
    let opened = session.connect().expect("connects");
    assert!(opened.problems.is_empty());
    assert_eq!(session.help_version(), 1, "COMMAND DOCS was read");
    (*session.help()).clone()
}

#[test]
fn builtin_table_matches_command_docs() {
    let server = TestServer::start();
    let served = server_table(&server, false);
    assert_eq!(
        served,
        server_table(&server, true),
        "RESP2 and RESP3 docs agree"
    );
    let builtin = builtin_table();

    let names = |docs: &[CommandDoc]| docs.iter().map(CommandDoc::full_name).collect::<Vec<_>>();
    assert_eq!(names(builtin.commands()), names(served.commands()));
    assert_eq!(builtin.groups(), served.groups());
    for (ours, theirs) in builtin.commands().iter().zip(served.commands()) {
        let name = ours.full_name();
        assert_eq!(
            (&ours.summary, &ours.since, &ours.group),
            (&theirs.summary, &theirs.since, &theirs.group),
            "{name}"
        );
        assert_eq!(ours.syntax(), theirs.syntax(), "{name}");
        // The whole tree, types and flags included; the server adds `display_text`.
        assert_eq!(ours.args, without_display(&theirs.args), "{name}");
    }
}

/// `args` with `display_text` dropped where it only repeats the name.
fn without_display(args: &[ArgSpec]) -> Vec<ArgSpec> {
    args.iter()
        .map(|arg| ArgSpec {
            display: arg.display.clone().filter(|text| *text != arg.name),
            children: without_display(&arg.children),
            ..arg.clone()
        })
        .collect()
}
