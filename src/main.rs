use clap::Parser;

use mailslotfs::cli::{Cli, Command, helper_mount};

fn main() {
    let argv: Vec<_> = std::env::args_os().collect();
    let command = match helper_mount(&argv) {
        Some(Ok(args)) => Command::Mount(Box::new(args)),
        Some(Err(line)) => fail(&line),
        None => Cli::parse_from(argv).command,
    };
    if let Err(line) = mailslotfs::cli::app::run(command) {
        fail(&line);
    }
}

fn fail(line: &str) -> ! {
    eprintln!("mailslotfs: {line}");
    std::process::exit(1);
}
