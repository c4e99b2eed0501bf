//! The `orgs` binary.

use clap::Parser;

/// The organizations service.
#[derive(Debug, Parser)]
#[command(name = "orgs", version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    eprintln!("orgs: serving is not wired yet; see README.md for what works today");
    std::process::exit(2);
}
