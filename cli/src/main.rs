//! `kvcli`: placeholder until the kvcli issue lands; it only says so.

fn main() {
    eprintln!(
        "kvcli: the interactive shell is not built yet; use redis-cli against kvserver for now"
    );
    std::process::exit(2);
}
