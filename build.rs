//! Names the commit the binary was built from, for `--version`: a bug
//! report then says exactly which code ran, which the Cargo version alone
//! cannot (it changes only at releases).

use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).map_or_else(
        || "unknown".to_owned(),
        |hash| {
            // Tracked files changed since that commit: the binary is not it.
            // --no-optional-locks: a build only reads, never refreshes the index.
            let status = [
                "--no-optional-locks",
                "status",
                "--porcelain",
                "--untracked-files=no",
            ];
            let dirty = git(&status).is_some_and(|changes| !changes.is_empty());
            if dirty { format!("{hash}-dirty") } else { hash }
        },
    );
    println!("cargo:rustc-env=MAILSLOTFS_COMMIT={commit}");
    // A new commit or checkout moves HEAD or the branch it names (loose or
    // packed); an edit to the sources changes "-dirty". `--git-path` finds
    // them also in a worktree, whose .git is a file. Only files that exist
    // (Cargo counts a missing one as changed, so every build would compile
    // again), and not the index, which git rewrites on mere reads.
    let mut watched = vec!["HEAD".to_owned(), "packed-refs".to_owned()];
    watched.extend(git(&["symbolic-ref", "-q", "HEAD"]));
    for path in watched {
        if let Some(file) = git(&["rev-parse", "--git-path", &path])
            && std::path::Path::new(&file).exists()
        {
            println!("cargo:rerun-if-changed={file}");
        }
    }
    for path in ["src", "Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// What a git command prints, trimmed; `None` without git or a repository.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
