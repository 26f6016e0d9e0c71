//! The man page and the shell completions, generated from the clap
//! definitions so that neither can drift from what the binary accepts.

use std::io::Write;

use clap::CommandFactory;
use clap_complete::Shell;
use clap_mangen::Man;
use clap_mangen::roff::{Roff, bold, roman};

use super::{BRIDGE_HEADING, Cli, fstab_example, helper_example, reason};

/// Prints the completion script for `shell`.
pub fn completions(shell: Shell) -> Result<(), String> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "mailslotfs", &mut script);
    print(&script)
}

/// Prints mailslotfs(8).
pub fn man() -> Result<(), String> {
    print(man_page().as_bytes())
}

fn print(bytes: &[u8]) -> Result<(), String> {
    std::io::stdout()
        .write_all(bytes)
        .map_err(|e| format!("standard output: {}", reason(&e)))
}

/// mailslotfs(8): clap_mangen renders one command per page, so the top
/// command's sections come first, then every subcommand's synopsis,
/// description and flags under COMMANDS, then what only a page can say:
/// the `-o` list and the mount-helper use. No date and no commit in it, so
/// the committed man/mailslotfs.8 changes only when the interface does.
pub fn man_page() -> String {
    let cli = Cli::command();
    let top = Man::new(cli.clone());
    // By hand: roff writes the empty date as nothing at all, which shifts
    // the source and manual into the wrong .TH fields.
    let mut out = Roff::new().render()
        + concat!(
            ".TH MAILSLOTFS 8 \"\" \"mailslotfs ",
            env!("CARGO_PKG_VERSION"),
            "\" \"System Manager's Manual\"\n"
        );
    for render in [
        Man::render_name_section,
        Man::render_synopsis_section,
        Man::render_description_section,
        Man::render_options_section,
    ] {
        out += &roff_of(|w| render(&top, w));
    }
    out += &roff_of(|w| Roff::new().control("SH", ["COMMANDS"]).to_writer(w));
    // Unbuilt (Man::new builds a copy), so -h, -V and `help`, listed
    // once at the top, are not repeated under each command.
    for sub in cli.get_subcommands() {
        let mut heading = vec![sub.get_name()];
        heading.extend(sub.get_visible_aliases());
        out += &roff_of(|w| {
            Roff::new()
                .control("SS", [heading.join(", ").as_str()])
                .to_writer(w)
        });
        // The -o list has its own section, which the flag points to.
        let sub = sub
            .clone()
            .bin_name(format!("mailslotfs {}", sub.get_name()))
            .disable_help_flag(true)
            .disable_version_flag(true)
            .mut_args(|a| match a.get_id().as_str() {
                "options" => a
                    .help("Comma-separated mount options, listed under MOUNT OPTIONS.")
                    .long_help(None),
                _ => a,
            });
        let man = Man::new(sub.clone());
        for render in [
            Man::render_synopsis_section,
            Man::render_description_section,
            Man::render_options_section,
        ] {
            out += &nested(&roff_of(|w| render(&man, w)), &sub);
        }
    }
    out += &roff_of(|w| page_only_sections(&cli).to_writer(w));
    out
}

/// MOUNT OPTIONS (the list in `mount -o`'s long help: `  key  meaning`
/// lines, deeper-indented lines continuing one; then the bridge's flags as
/// options), MOUNT HELPER, EXIT STATUS and SEE ALSO.
fn page_only_sections(cli: &clap::Command) -> Roff {
    let mount = cli.find_subcommand("mount");
    let help = mount
        .and_then(|m| m.get_arguments().find(|a| a.get_id() == "options"))
        .and_then(|o| o.get_long_help())
        .map(|h| h.to_string())
        .unwrap_or_default();
    let mut roff = Roff::new();
    roff.control("SH", ["MOUNT OPTIONS"]);
    let mut entries: Vec<(&str, String)> = Vec::new();
    for line in help.lines().skip_while(|l| !l.is_empty()) {
        match line.strip_prefix("  ") {
            Some(more) if more.starts_with(' ') => {
                if let Some((_, meaning)) = entries.last_mut() {
                    *meaning += " ";
                    *meaning += more.trim();
                }
            }
            Some(entry) => {
                let (key, meaning) = entry.split_once("  ").unwrap_or((entry, ""));
                entries.push((key, meaning.trim().to_owned()));
            }
            None if line.is_empty() => {
                roff.control("PP", []);
            }
            None => {
                roff.text([roman(line)]);
            }
        }
    }
    for (key, meaning) in entries {
        roff.control("TP", [])
            .text([bold(key)])
            .text([roman(meaning)]);
    }
    roff.control("PP", []).text([roman(
        "The network bridge's options, each the same as its flag under mount \
         (the bridge is off unless bridge is given):",
    )]);
    for (key, meaning) in mount.map(bridge_options).unwrap_or_default() {
        roff.control("TP", [])
            .text([bold(key)])
            .text([roman(meaning)]);
    }
    roff.control("SH", ["MOUNT HELPER"])
        .text([roman(
            "Installed as /sbin/mount.fuse.mailslotfs and /sbin/mount.mailslotfs \
             (links to the binary), mailslotfs is the helper mount(8) runs for \
             -t fuse.mailslotfs, -t mailslotfs and fstab lines of either type:",
        )])
        .control("PP", [])
        .text([
            bold("mount.fuse.mailslotfs"),
            roman(" SOURCE DIR [-sfnv] [-o OPTIONS]"),
        ])
        .control("PP", [])
        .text([roman(
            "SOURCE is what the mount table shows; -f checks everything but does \
             not mount, -v logs more, -s and -n are accepted and mean nothing here. \
             The form fuse3's mount.fuse3 uses, mailslotfs SOURCE DIR -o OPTIONS, \
             works too. For example:",
        )])
        .control("EX", [])
        .text([roman(helper_example!())])
        .control("EE", [])
        .control("PP", [])
        .text([roman(
            "and in /etc/fstab (nofail keeps the boot going where FUSE is missing):",
        )])
        .control("EX", [])
        .text([roman(fstab_example!())])
        .control("EE", [])
        .control("PP", []);
    roff.control("SH", ["EXIT STATUS"]).text([roman(
        "0 on success. Otherwise 1, after one line on standard error: \
         mailslotfs: WHAT: WHY.",
    )]);
    roff.control("SH", ["SEE ALSO"]).text([roman(
        "mount(8), fstab(5), fusermount3(1), systemd.mount(5); \
         the examples in /usr/share/doc/mailslotfs/examples.",
    )]);
    roff
}

/// The bridge's flags in their `-o` spelling, with their help:
/// `--netbios-name NAME` is `netbios_name=NAME`. Read from the flags'
/// own definitions, so that the list cannot miss one.
fn bridge_options(mount: &clap::Command) -> Vec<(String, String)> {
    mount
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(BRIDGE_HEADING))
        .filter_map(|a| {
            let key = a.get_long()?.replace('-', "_");
            let key = match a.get_value_names().and_then(|names| names.first()) {
                Some(value) if a.get_action().takes_values() => format!("{key}={value}"),
                _ => key,
            };
            let help = a.get_help()?.to_string();
            Some((key, help.trim_end_matches('.').to_owned()))
        })
        .collect()
}

/// One section's roff, without the preamble roff puts before each page
/// (the page starts with it once).
fn roff_of(render: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut bytes = Vec::new();
    render(&mut bytes).expect("writing to a Vec cannot fail");
    let text = String::from_utf8(bytes).expect("roff of UTF-8 text is UTF-8");
    text.strip_prefix(&Roff::new().render())
        .unwrap_or(&text)
        .to_owned()
}

/// A subcommand's sections inside COMMANDS: the standard headings become
/// paragraph breaks (the command's own heading stands for them), a flag
/// group's heading becomes a subsection in the spelling `--help` uses.
fn nested(roff: &str, sub: &clap::Command) -> String {
    let standard = ["SYNOPSIS", "DESCRIPTION", "OPTIONS"].map(|h| control_line("SH", h));
    let groups: Vec<(String, String)> = sub
        .get_arguments()
        .filter_map(|a| a.get_help_heading())
        .map(|h| (control_line("SH", &h.to_uppercase()), control_line("SS", h)))
        .collect();
    roff.lines()
        .map(|line| match groups.iter().find(|(sh, _)| sh == line) {
            _ if standard.iter().any(|h| h == line) => ".PP\n".to_owned(),
            Some((_, ss)) => format!("{ss}\n"),
            None => format!("{line}\n"),
        })
        .collect()
}

/// A roff request line as the roff crate writes it (quoting, escapes).
fn control_line(name: &str, arg: &str) -> String {
    Roff::new()
        .control(name, [arg])
        .to_roff()
        .trim_end()
        .to_owned()
}
