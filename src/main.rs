use clap::Parser;

fn main() {
    let cli = mailslotfs::cli::Cli::parse();
    if let Err(line) = mailslotfs::app::run(cli) {
        eprintln!("mailslotfs: {line}");
        std::process::exit(1);
    }
}
