//! `kvcli`: the interactive shell of kvstore. Everything lives in the library
//! (`cli/src/lib.rs`), so that tests drive the same code.

use std::process::ExitCode;

fn main() -> ExitCode {
    kvcli::run()
}
