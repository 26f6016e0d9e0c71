use mailslotfs::cli::{Command, helper_mount, parse_command_line};

fn main() {
    let argv: Vec<_> = std::env::args_os().collect();
    let command = match helper_mount(&argv) {
        Some(Ok(args)) => Command::Mount(Box::new(args)),
        Some(Err(line)) => fail(&line),
        None => parse_command_line(argv).unwrap_or_else(|line| fail(&line)),
    };
    if let Err(line) = mailslotfs::cli::app::run(command) {
        fail(&line);
    }
}

fn fail(line: &str) -> ! {
    eprintln!("mailslotfs: {line}");
    std::process::exit(1);
}
