//! `studentsim import` (datasets → problems + trajectories) and `studentsim split`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};

use super::output::progress_of_unknown_length;
use super::{Context, LimitArgs, default_jobs, registry_problems, tokio_runtime};
use crate::BadInput;
use crate::generate::real_feedback::{previous_attempts, real_feedback};
use crate::generate::sft::{SftRow, SftSpec, sft_rows};
use crate::grade::Label;
use crate::jsonl::{self, write_atomically};
use crate::problems::MANIFEST;
use crate::problems::Problem;
use crate::trajectory::split::{Part, Split, SplitSpec};
use crate::trajectory::{self, Anonymizer, newcaledonia, progsnap2};

/// Environment variable holding the anonymization salt (when no --salt-file is given).
pub const SALT_ENV: &str = "STUDENTSIM_SALT";

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// The NewCaledonia dataset: its 66 exercises become problems (expected outputs from the teacher solution,
    /// run in the sandbox) and its 5,690 submissions become graded, anonymized trajectories.
    #[command(
        after_help = "Writes OUT/problems/<id>/problem.toml and OUT/trajectories.jsonl.\n\nExamples:\n  studentsim import newcaledonia ../shared/data/newcaledonia --output nc --salt-file salt.txt"
    )]
    Newcaledonia {
        /// The folder holding NewCaledonia_exercises.json and NewCaledonia_5690_light.json.
        dir: PathBuf,
        /// Folder for the problem registry and the trajectory rows.
        #[arg(long = "output", short, alias = "out", value_name = "DIR")]
        out: PathBuf,
        #[command(flatten)]
        anonymize: AnonymizeArgs,
        /// Submissions graded in parallel [default: number of cores].
        #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
        jobs: usize,
        #[command(flatten)]
        limits: LimitArgs,
    },
    /// A ProgSnap2 folder (MainTable.csv + CodeStates): Submit and Run events become trajectory rows.
    #[command(after_help = "Rows are ungraded unless the table has Score and X-Label columns (as `export progsnap2` \
        writes); grade them with `studentsim grade`. Timestamps without a zone are read as UTC.\n\nExamples:\n  studentsim import progsnap2 course-ps2 --output trajectories.jsonl --salt-file salt.txt")]
    Progsnap2 {
        /// The ProgSnap2 folder.
        dir: PathBuf,
        /// Trajectory rows to write (JSONL, atomically).
        #[arg(long = "output", short, alias = "out", value_name = "JSONL")]
        out: PathBuf,
        #[command(flatten)]
        anonymize: AnonymizeArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Write trajectory rows as a ProgSnap2 folder (one Submit event per row; Score = pass rate, X-Label = label).
    #[command(after_help = "Examples:\n  studentsim export progsnap2 --input nc/trajectories.jsonl --output nc-ps2")]
    Progsnap2 {
        /// The trajectory rows to write out.
        #[arg(long, value_name = "JSONL")]
        input: PathBuf,
        /// The folder to write MainTable.csv, CodeStates/CodeStates.csv and DatasetMetadata.csv into.
        #[arg(long = "output", short, alias = "out", value_name = "DIR")]
        out: PathBuf,
    },
    /// Write fine-tuning rows in the study's layout ({prompt, completion, experiment, stage, k, context, ...}):
    /// the fine-tuned prompt of every stage (Experiment 1) and next step (Experiment 2), and the real code as
    /// the completion. Train on the completion only (`studentsim train` does).
    #[command(
        after_help = "Examples:\n  studentsim --problems nc/problems export sft --input nc/split/train.jsonl --output sft.jsonl --feedback"
    )]
    Sft {
        #[command(flatten)]
        rows: SftArgs,
        /// The fine-tuning rows to write (JSONL, atomically).
        #[arg(long = "output", short, alias = "out", value_name = "JSONL")]
        out: PathBuf,
    },
}

/// Which fine-tuning rows to make, from which trajectories (`export sft` and `train`).
#[derive(Debug, Args)]
pub struct SftArgs {
    /// Trajectory rows, usually the train part of a split.
    #[arg(long, value_name = "JSONL")]
    pub input: PathBuf,
    /// Leave out the Experiment 1 (stage) rows.
    #[arg(long)]
    pub no_stages: bool,
    /// Experiment 2 rows with k real priors; repeat for several k.
    #[arg(long = "k", value_name = "K", default_values_t = [1usize, 3], value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub ks: Vec<usize>,
    /// Which context variants to write.
    #[arg(long, value_enum, default_value_t = ContextVariants::Both)]
    pub context: ContextVariants,
    /// Show each next step what its previous real attempt was graded, as a stream's FEEDBACK section shows a
    /// simulated student (label, message, failing examples): every previous attempt is graded in the sandbox
    /// first (each distinct program once). Without it the rows are exactly the study's.
    #[arg(long)]
    pub feedback: bool,
    /// Submissions graded in parallel for --feedback [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true, value_parser = clap::value_parser!(u16).range(1..).map(usize::from))]
    pub jobs: usize,
    #[command(flatten)]
    pub limits: LimitArgs,
}

impl SftArgs {
    /// The rows asked for, made from the trajectories of --input.
    pub fn rows(&self, ctx: &Context) -> Result<Vec<SftRow>> {
        let lines = trajectory::read_numbered(&self.input)?;
        let registry = ctx.registry()?;
        let problems: HashMap<String, Arc<Problem>> = registry_problems(
            ctx,
            &registry,
            &self.input,
            lines.iter().map(|(line, r)| (*line, r.problem.as_str())),
            "",
        )?
        .into_iter()
        .map(|(id, p)| (id, Arc::new(p.clone())))
        .collect();
        let rows: Vec<trajectory::Submission> = lines.into_iter().map(|(_, r)| r).collect();
        let spec = SftSpec {
            stages: !self.no_stages,
            ks: self.ks.clone(),
            without_context: self.context != ContextVariants::With,
            with_context: self.context != ContextVariants::Without,
        };
        let feedback = match self.feedback {
            false => None,
            true => {
                let grader = ctx.grader(&self.limits, self.jobs)?;
                let rt = tokio_runtime(self.jobs)?;
                let bar = progress_of_unknown_length("grading previous attempts");
                let wanted = previous_attempts(&rows, &self.ks);
                let graded = rt.block_on(real_feedback(grader, &problems, &rows, &wanted, self.jobs, &bar))?;
                bar.finish_and_clear();
                Some(graded)
            }
        };
        Ok(sft_rows(&rows, &problems, &spec, feedback.as_ref()))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ContextVariants {
    Without,
    With,
    Both,
}

#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// File whose bytes salt the hash that replaces student ids [default: $STUDENTSIM_SALT].
    #[arg(long, value_name = "FILE", conflicts_with = "no_anonymize")]
    salt_file: Option<PathBuf>,
    /// Keep the dataset's own student ids.
    #[arg(long)]
    no_anonymize: bool,
}

impl AnonymizeArgs {
    fn anonymizer(&self) -> Result<Option<Anonymizer>, BadInput> {
        if self.no_anonymize {
            return Ok(None);
        }
        let salt = match (&self.salt_file, std::env::var_os(SALT_ENV)) {
            (Some(path), _) => std::fs::read(path)
                .map_err(|e| BadInput(format!("{}: cannot read the salt file: {e}", path.display())))?,
            (None, Some(salt)) => salt.into_encoded_bytes(),
            (None, None) => {
                return Err(BadInput(format!(
                    "refusing to import without an anonymization salt: pass --salt-file FILE, set {SALT_ENV}, or pass --no-anonymize"
                )));
            }
        };
        Anonymizer::new(salt).map(Some)
    }
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  studentsim split --input nc/trajectories.jsonl --output nc/split --seed 1")]
pub struct SplitArgs {
    /// Trajectory rows to split.
    #[arg(long, value_name = "JSONL")]
    input: PathBuf,
    /// Folder for train.jsonl, ns_op.jsonl and ns_np.jsonl.
    #[arg(long = "output", short, alias = "out", value_name = "DIR")]
    out: PathBuf,
    /// Seeds which students and problems are held out.
    #[arg(long, default_value_t = SplitSpec::default().seed)]
    seed: u64,
    /// Share of students held out (they make up both test sets).
    #[arg(long, value_name = "SHARE", default_value_t = SplitSpec::default().test_students)]
    test_students: f64,
    /// Share of problems held out (the new-problem test set).
    #[arg(long, value_name = "SHARE", default_value_t = SplitSpec::default().test_problems)]
    test_problems: f64,
}

pub fn import(ctx: &Context, cmd: ImportCommand) -> Result<ExitCode> {
    match cmd {
        ImportCommand::Newcaledonia { dir, out, anonymize, jobs, limits } => {
            import_newcaledonia(ctx, &dir, &out, &anonymize, jobs, &limits)
        }
        ImportCommand::Progsnap2 { dir, out, anonymize } => {
            let rows = progsnap2::import(&dir, anonymize.anonymizer()?.as_ref())?;
            jsonl::write(&out, &rows)?;
            println!("{} submissions -> {}", rows.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn import_newcaledonia(
    ctx: &Context,
    dir: &Path,
    out: &Path,
    anonymize: &AnonymizeArgs,
    jobs: usize,
    limits: &LimitArgs,
) -> Result<ExitCode> {
    let anonymizer = anonymize.anonymizer()?;
    let grader = ctx.grader(limits, jobs)?;
    let rt = tokio_runtime(jobs)?;
    let bar = progress_of_unknown_length("grading");
    let imported = rt.block_on(newcaledonia::import(dir, grader, anonymizer.as_ref(), jobs, &bar))?;
    bar.finish_and_clear();

    // Everything is computed before the first file is written.
    for problem in &imported.problems {
        let text = problem.to_toml();
        write_atomically(
            &out.join("problems").join(&problem.id).join(MANIFEST),
            |w| Ok(w.write_all(text.as_bytes())?),
        )?;
    }
    let trajectories = out.join("trajectories.jsonl");
    jsonl::write(&trajectories, &imported.submissions)?;

    let mut agreement: BTreeMap<(Label, bool), usize> = BTreeMap::new();
    for s in &imported.submissions {
        if let (Some(label), Some(platform)) = (s.label, s.platform_correct) {
            *agreement.entry((label, platform)).or_default() += 1;
        }
    }
    println!(
        "{} problems ({} test inputs dropped) -> {}",
        imported.problems.len(),
        imported.dropped_examples,
        out.join("problems").display()
    );
    println!("{} submissions -> {}", imported.submissions.len(), trajectories.display());
    println!("our label vs the platform's verdict (correct / not):");
    for label in [Label::NoError, Label::Logical, Label::Runtime, Label::Compile] {
        let count = |platform| agreement.get(&(label, platform)).copied().unwrap_or(0);
        println!("  {:<9} {:>5} / {:>5}", label.as_str(), count(true), count(false));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn export(ctx: &Context, cmd: ExportCommand) -> Result<ExitCode> {
    match cmd {
        ExportCommand::Progsnap2 { input, out } => {
            let rows = trajectory::read(&input)?;
            progsnap2::export(&rows, &out)?;
            println!("{} submissions -> {}", rows.len(), out.display());
        }
        ExportCommand::Sft { rows, out } => {
            let sft = rows.rows(ctx)?;
            jsonl::write(&out, &sft)?;
            println!("{} fine-tuning rows -> {}", sft.len(), out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn split(args: SplitArgs) -> Result<ExitCode> {
    let spec = SplitSpec { seed: args.seed, test_students: args.test_students, test_problems: args.test_problems };
    split_into(&args.input, &args.out, &spec)?;
    Ok(ExitCode::SUCCESS)
}

/// Split the rows of `input` by `spec` into train.jsonl, ns_op.jsonl and ns_np.jsonl in `out`.
pub(super) fn split_into(input: &Path, out: &Path, spec: &SplitSpec) -> Result<()> {
    let rows = trajectory::read(input)?;
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows to split", input.display())).into());
    }
    let split = Split::new(&rows, spec)?;
    let mut counts = BTreeMap::new();
    for part in [Part::Train, Part::NsOp, Part::NsNp] {
        let chosen: Vec<_> = rows.iter().filter(|r| split.part(r) == part).collect();
        counts.insert(part.file_stem(), chosen.len());
        jsonl::write(&out.join(format!("{}.jsonl", part.file_stem())), chosen)?;
    }
    let unused = rows.len() - counts.values().sum::<usize>();
    println!(
        "held out {} students and {} problems (seed {}): train {}, ns_op {}, ns_np {} rows; {unused} rows of kept students on held-out problems left out",
        split.test_students.len(),
        split.test_problems.len(),
        spec.seed,
        counts["train"],
        counts["ns_op"],
        counts["ns_np"]
    );
    Ok(())
}
