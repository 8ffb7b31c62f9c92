//! `studentsim init DIR`: a course folder to start from: a sample problem, a few submissions (one correct, one
//! wrong, one that does not compile) and a README with the commands that grade them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Args;

use crate::BadInput;

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    studentsim init my-course && cd my-course && studentsim grade -p count-vowels submissions/*.py")]
pub struct InitArgs {
    /// The folder to create (it must not exist, or be empty).
    dir: PathBuf,
}

const PROBLEM: &str = include_str!("../../problems/count-vowels/problem.toml");

const SUBMISSIONS: [(&str, &str); 3] = [
    ("correct.py", "def count_vowels(s):\n    return sum(1 for c in s.lower() if c in \"aeiou\")\n"),
    ("lowercase_only.py", "def count_vowels(s):\n    return sum(1 for c in s if c in \"aeiou\")\n"),
    ("missing_colon.py", "def count_vowels(s)\n    return 0\n"),
];

pub fn run(args: &InitArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    if dir.exists() && std::fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_some()) {
        return Err(BadInput(format!("{}: already exists and is not empty", dir.display())).into());
    }
    // Built beside, then renamed into place: a failed init leaves nothing behind.
    let parent = dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let staging =
        tempfile::Builder::new().prefix(".studentsim-init").tempdir_in(parent).context("making a temp folder")?;
    let root = staging.path();
    std::fs::create_dir_all(root.join("problems/count-vowels"))?;
    std::fs::write(root.join("problems/count-vowels/problem.toml"), PROBLEM)?;
    std::fs::create_dir_all(root.join("submissions"))?;
    for (name, code) in SUBMISSIONS {
        std::fs::write(root.join("submissions").join(name), code)?;
    }
    std::fs::write(root.join("README.md"), README)?;
    if dir.exists() {
        std::fs::remove_dir(dir).with_context(|| format!("replacing the empty {}", dir.display()))?;
    }
    std::fs::rename(staging.keep(), dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("created {} with one problem and {} submissions; next:", dir.display(), SUBMISSIONS.len());
    println!("  cd {} && studentsim grade -p count-vowels submissions/*.py", dir.display());
    Ok(ExitCode::SUCCESS)
}

const README: &str = "# A studentsim course folder\n\n\
`problems/` is the problem registry (one folder per problem, each with a `problem.toml`; studentsim reads\n\
`./problems` by default) and `submissions/` holds three attempts at `count-vowels`.\n\n\
```sh\n\
studentsim problems check                                  # the reference passes, the bare stub does not\n\
studentsim grade -p count-vowels submissions/*.py           # a line per file, what failed under it\n\
studentsim grade -p count-vowels --json submissions/*.py    # one JSON record per file\n\
studentsim problems new my-problem                          # scaffold a problem of your own\n\
studentsim problems import doctest-file hw01.py --solution hw01_sol.py --into problems\n\
studentsim gradescope package -p count-vowels --out autograder.zip\n\
```\n\n\
Hidden tests, points and every field of `problem.toml`: the course-staff guide (docs/guide-course-staff.md).\n";
