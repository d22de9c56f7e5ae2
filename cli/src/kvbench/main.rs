//! `kvbench`: placeholder until the load generator lands.

fn main() {
    eprintln!("kvbench: not built yet");
    std::process::exit(2);
}
