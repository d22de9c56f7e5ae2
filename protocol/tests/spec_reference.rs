//! SPEC.md's command reference (section 6) against the command catalogue.
//!
//! Two checks, so that the reference cannot drift from what the server answers:
//!
//! - the hand-written tables of sections 6.1-6.10 (replies and notes are prose the catalogue
//!   does not hold) name every command and subcommand once, with the catalogue's syntax and
//!   arity, and the section's introduction gives the right counts;
//! - the command index between the `catalogue:begin`/`catalogue:end` markers is generated
//!   from the catalogue (flags, keys, ACL categories, propagation, summary) and must equal
//!   the generated text. After changing the catalogue, regenerate it with
//!   `UPDATE_SPEC=1 cargo test -p kv-protocol --test spec_reference`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use protocol::catalogue::{self, CommandSpec, Propagation};

const BEGIN: &str = "<!-- catalogue:begin (generated from protocol/src/catalogue; UPDATE_SPEC=1 cargo test -p kv-protocol --test spec_reference) -->";
const END: &str = "<!-- catalogue:end -->";

fn spec_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../SPEC.md")
}

fn read_spec() -> String {
    std::fs::read_to_string(spec_path()).expect("SPEC.md is readable")
}

/// `CLIENT LIST` for `client|list`.
fn display_name(spec: &CommandSpec) -> String {
    spec.name.replace('|', " ").to_ascii_uppercase()
}

/// Section 6 of SPEC.md, up to section 7.
fn section_6(spec_md: &str) -> &str {
    let start = spec_md
        .find("\n## 6. Command reference")
        .expect("SPEC.md has section 6");
    let end = spec_md[start..]
        .find("\n## 7.")
        .map_or(spec_md.len(), |e| start + e);
    &spec_md[start..end]
}

/// The cells of a Markdown table row, `\|` unescaped and surrounding spaces trimmed.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut cells = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                chars.next();
                if let Some(cell) = cells.last_mut() {
                    cell.push('|');
                }
            }
            '|' => cells.push(String::new()),
            c => {
                if let Some(cell) = cells.last_mut() {
                    cell.push(c);
                }
            }
        }
    }
    cells.iter().map(|c| c.trim().to_owned()).collect()
}

#[test]
fn reference_tables_match_the_catalogue() {
    let spec_md = read_spec();
    let section = section_6(&spec_md);
    let hand_written = section.split(BEGIN).next().unwrap_or(section);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut in_command_table = false;
    for line in hand_written.lines() {
        if !line.starts_with('|') {
            in_command_table = false;
            continue;
        }
        let row = cells(line);
        if row.first().map(String::as_str) == Some("Command") {
            assert_eq!(
                &row[..3],
                ["Command", "Syntax", "Arity"],
                "command tables start with Command, Syntax, Arity"
            );
            in_command_table = true;
            continue;
        }
        if !in_command_table || row[0].starts_with("---") {
            continue;
        }
        let name = row[0].to_ascii_lowercase().replace(' ', "|");
        let spec = catalogue::find_full(name.as_bytes())
            .unwrap_or_else(|| panic!("SPEC.md documents {:?}, which the catalogue lacks", row[0]));
        let usage = spec.usage();
        let expected_syntax = if usage.is_empty() {
            format!("`{}`", display_name(spec))
        } else {
            format!("`{} {usage}`", display_name(spec))
        };
        assert_eq!(row[1], expected_syntax, "syntax of {}", row[0]);
        assert_eq!(row[2], spec.arity.to_string(), "arity of {}", row[0]);
        *seen.entry(spec.name.to_owned()).or_default() += 1;
    }
    for spec in catalogue::all() {
        let count = seen.get(spec.name).copied().unwrap_or(0);
        if spec.subcommands.is_empty() {
            assert_eq!(
                count, 1,
                "{} documented {count} times in 6.1-6.10",
                spec.name
            );
        } else {
            // A container is documented through its subcommands; it may have its own row.
            assert!(count <= 1, "{} documented {count} times", spec.name);
        }
    }
    let commands = catalogue::COMMANDS.len();
    let subcommands: usize = catalogue::COMMANDS
        .iter()
        .map(|c| c.subcommands.len())
        .sum();
    let counts = format!(
        "{commands} commands,\n{subcommands} subcommands (`COMMAND COUNT` replies {commands})"
    );
    assert!(
        section
            .replace('\n', " ")
            .contains(&counts.replace('\n', " ")),
        "section 6 should say: {counts}"
    );
}

/// The command index SPEC.md carries between the markers.
fn generated_index() -> String {
    let mut text = String::new();
    text.push_str(
        "| Command | Group | Arity | Flags | Keys | ACL categories | Propagation | Since | Summary |\n\
         | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for spec in catalogue::all() {
        let keys = spec.legacy_range();
        let keys = if spec.key_specs.is_empty() {
            String::new()
        } else {
            format!("{} {} {}", keys.first, keys.last, keys.step)
        };
        let flags: Vec<&str> = spec.flags.names().collect();
        let categories: Vec<String> = spec
            .acl_categories
            .names()
            .map(|name| format!("@{name}"))
            .collect();
        let propagation = match spec.propagation() {
            Propagation::None => "",
            other => other.as_str(),
        };
        let _ = writeln!(
            text,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            display_name(spec),
            spec.group.as_str(),
            spec.arity,
            flags.join(" "),
            keys,
            categories.join(" "),
            propagation,
            spec.since,
            spec.summary.replace('|', "\\|"),
        );
    }
    text
}

#[test]
fn command_index_is_generated_from_the_catalogue() {
    let spec_md = read_spec();
    let (before, rest) = spec_md
        .split_once(BEGIN)
        .expect("SPEC.md has the catalogue:begin marker");
    let (current, after) = rest
        .split_once(END)
        .expect("SPEC.md has the catalogue:end marker");
    let generated = format!("\n{}", generated_index());
    if current == generated {
        return;
    }
    if std::env::var_os("UPDATE_SPEC").is_some() {
        // Written aside and renamed, so that the other test never reads half a file.
        let updated = format!("{before}{BEGIN}{generated}{END}{after}");
        let temporary = spec_path().with_extension("md.new");
        std::fs::write(&temporary, updated).expect("SPEC.md's directory is writable");
        std::fs::rename(&temporary, spec_path()).expect("SPEC.md is replaceable");
        return;
    }
    panic!(
        "SPEC.md's command index differs from the catalogue; regenerate it with \
         `UPDATE_SPEC=1 cargo test -p kv-protocol --test spec_reference`.\nExpected:\n{generated}"
    );
}
