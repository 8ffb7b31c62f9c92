//! `studentsim score`: compare one real set with simulated sets and write the report.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use clap::Args;
use serde::{Deserialize, Serialize};

use super::output::progress;
use super::shard::ShardArgs;
use super::{Context, LimitArgs, Pep8EngineArgs, default_jobs, registry_problems, tokio_runtime};
use crate::grade::batch::grade_distinct;
use crate::grade::{Grader, Label};
use crate::metrics::embed::{self, EmbeddingCache};
use crate::metrics::style::{Pep8Engine, styles_parallel};
use crate::problems::{Problem, Registry};
use crate::score::{self, Options, Pep8Count, ScoredSet};
use crate::trajectory::{Source, Submission};
use crate::{BadInput, jsonl};

#[derive(Debug, Args)]
#[command(after_help = "Writes into --out: metrics.json (every number), report.md (the reference study's Tables 1-3 \
    and label shares per stage), report.html (the same tables, the figures inline and a trajectory explorer, in one \
    self-contained file), and the figures embeddings_pca.svg, error_types.svg, progress.svg and attempts.svg, each \
    also as a PNG at twice its size (embeddings_pca.png, ...) for a paper; all of them or none.\n\n\
    Rows without a label or pass_rate are graded in the sandbox against --problems first. Simulated rows are \
    paired with real rows by (student, problem) at each stage and by (student, problem, attempt) for next steps; \
    see the report's notes.\n\nExamples:\n  studentsim score --real split/ns_op.jsonl --sim sims/edits.jsonl --sim copy=sims/copy.jsonl --output report")]
pub struct ScoreArgs {
    /// The real trajectory rows (native JSONL), e.g. the ns_op part of a split.
    #[arg(long, value_name = "JSONL")]
    real: PathBuf,
    /// A simulated set (native JSONL, one generator); repeat for several. `NAME=JSONL` names the set; otherwise
    /// it is named by its rows' `source` (or its file name when that is `real`).
    #[arg(long = "sim", value_name = "[NAME=]JSONL", required = true)]
    sims: Vec<SimArg>,
    /// Folder to write the report into (created; files in it are replaced); with --shard, the shard's file.
    #[arg(long = "output", short, alias = "out", value_name = "DIR")]
    out: PathBuf,
    /// Embedding model: a local Hugging Face folder (config.json, model.safetensors, tokenizer.json) of a
    /// BERT-family model or of SFR-Embedding-Code-400M_R / gte-v1.5 [default: all-MiniLM-L6-v2 from
    /// runtimes/setup.sh].
    #[arg(long, value_name = "DIR")]
    embedder: Option<PathBuf>,
    /// Where embeddings are cached by code hash [default: embeddings/ in the runtime folder].
    #[arg(long, value_name = "DIR")]
    embedding_cache: Option<PathBuf>,
    /// Which PEP 8 count the tables' PEP 8 columns use; Tables 2 and 3 show the other one beside them. plain:
    /// pycodestyle on each program as submitted; wrapped: the study's count (each program wrapped in a function
    /// first, as its evaluation code does).
    #[arg(long, value_enum, default_value_t)]
    pep8: Pep8Count,
    #[command(flatten)]
    pep8_engine: Pep8EngineArgs,
    /// The simulated sets the figures show, by name, comma-separated (the real set is always shown) [default:
    /// all]. The tables and metrics.json always hold every set.
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    sets: Option<Vec<String>>,
    /// Sandbox instances to run at once (grading and style features) [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true)]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
    /// With --shard, --out is this shard's file of grades and embeddings, and `studentsim merge --output DIR`
    /// makes the report from all of them.
    #[command(flatten)]
    shard: ShardArgs,
}

/// Everything that decides score's report, lowered once from [`ScoreArgs`]; not where the report goes or how many
/// jobs make it. A score shard's manifest stores it, and `merge` makes the report from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ScoreSettings {
    /// The registry rows without a grade are graded against.
    pub problems: PathBuf,
    /// The runtime folder, when one was named.
    pub runtime: Option<PathBuf>,
    pub real: PathBuf,
    pub sims: Vec<SimArg>,
    pub embedder: Option<PathBuf>,
    pub embedding_cache: Option<PathBuf>,
    pub pep8: Pep8Count,
    pub pep8_engine: Pep8Engine,
    pub limits: LimitArgs,
    /// The simulated sets the figures show (all when `None`).
    pub figure_sets: Option<Vec<String>>,
}

impl ScoreSettings {
    /// The report of `real` against `sims`, with every other setting at its default.
    pub fn new(ctx: &Context, real: PathBuf, sims: Vec<SimArg>) -> Self {
        Self {
            problems: ctx.problems.clone(),
            runtime: ctx.runtime.clone(),
            real,
            sims,
            embedder: None,
            embedding_cache: None,
            pep8: Pep8Count::default(),
            pep8_engine: Pep8Engine::default(),
            limits: LimitArgs::default(),
            figure_sets: None,
        }
    }

    fn context(&self) -> Context {
        Context::new(self.problems.clone(), self.runtime.clone())
    }
}

impl ScoreArgs {
    fn settings(&self, ctx: &Context) -> ScoreSettings {
        ScoreSettings {
            problems: ctx.problems.clone(),
            runtime: ctx.runtime.clone(),
            real: self.real.clone(),
            sims: self.sims.clone(),
            embedder: self.embedder.clone(),
            embedding_cache: self.embedding_cache.clone(),
            pep8: self.pep8,
            pep8_engine: self.pep8_engine.pep8_engine,
            limits: self.limits.clone(),
            figure_sets: self.sets.clone(),
        }
    }
}

/// Programs embedded at once.
const EMBED_BATCH: usize = 32;

/// A set as read: its rows with their line numbers.
struct Input {
    path: PathBuf,
    name: String,
    rows: Vec<(usize, Submission)>,
}

fn read_set(path: &Path) -> Result<Input, BadInput> {
    let mut rows = crate::trajectory::read_numbered(path)?;
    // Rollouts write rows as they finish; one order makes every sum, and so the report, the same to the bit.
    rows.sort_by(|(_, a), (_, b)| {
        (&a.student, &a.problem, a.time, a.attempt).cmp(&(&b.student, &b.problem, b.time, b.attempt))
    });
    if rows.is_empty() {
        return Err(BadInput(format!("{}: no rows; every set needs at least one submission", path.display())));
    }
    let stem = path.file_stem().map_or_else(|| "sim".to_owned(), |s| s.to_string_lossy().into_owned());
    let name = match &rows[0].1.source {
        Source::Real => stem,
        Source::Generator(name) => name.clone(),
    };
    Ok(Input { path: path.to_owned(), name, rows })
}

/// A `--sim [NAME=]JSONL` argument: a simulated set's file and the name it is shown under, if given. A `=`
/// inside a path (one whose part before it has a `/`) does not name it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SimArg {
    pub name: Option<String>,
    pub path: PathBuf,
}

impl std::str::FromStr for SimArg {
    type Err = std::convert::Infallible;

    fn from_str(arg: &str) -> Result<Self, Self::Err> {
        Ok(match arg.split_once('=') {
            Some((name, path)) if !name.is_empty() && !name.contains('/') => {
                Self { name: Some(name.to_owned()), path: path.into() }
            }
            _ => Self { name: None, path: arg.into() },
        })
    }
}

impl std::fmt::Display for SimArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(name) => write!(f, "{name}={}", self.path.display()),
            None => write!(f, "{}", self.path.display()),
        }
    }
}

/// Read and check every input before any work: each set non-empty, every simulated row on a real problem.
fn read_inputs(args: &ScoreSettings) -> Result<(Input, Vec<Input>), BadInput> {
    let mut real = read_set(&args.real)?;
    real.name = Source::Real.name().to_owned();
    let problems: BTreeSet<&str> = real.rows.iter().map(|(_, r)| r.problem.as_str()).collect();
    let mut sims = Vec::new();
    let mut names: BTreeSet<String> = BTreeSet::from([Source::Real.name().to_owned()]);
    for SimArg { name, path } in &args.sims {
        let mut sim = read_set(path)?;
        if let Some(name) = name {
            sim.name = name.clone();
        }
        if let Some((line, row)) = sim.rows.iter().find(|(_, r)| !problems.contains(r.problem.as_str())) {
            return Err(BadInput(format!(
                "{}:{line}: problem {:?} is not in the real set {} (simulated and real sets must cover the same problems)",
                path.display(),
                row.problem,
                args.real.display()
            )));
        }
        let base = sim.name.clone();
        let mut n = 2;
        while !names.insert(sim.name.clone()) {
            sim.name = format!("{base}-{n}");
            n += 1;
        }
        sims.push(sim);
    }
    Ok((real, sims))
}

mod shards;
pub(super) use shards::merge;

pub fn run(ctx: &Context, args: ScoreArgs) -> Result<ExitCode> {
    let settings = args.settings(ctx);
    if let Some(shard) = args.shard.shard {
        return shards::run_shard(&settings, &args, shard);
    }
    let (_, markdown) = write_report(&settings, &args.out, args.jobs)?;
    let tables = markdown.split("## Table 3").nth(1).and_then(|t| t.split("\n## ").next()).unwrap_or("");
    println!("Table 3{}", tables.trim_end());
    println!("\nreport: {} (open it in a browser; report.md beside it)", args.out.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}

/// Score the sets of `settings` with up to `jobs` sandboxes at once and write the report files into `out`; the
/// report and its markdown.
pub(super) fn write_report(settings: &ScoreSettings, out: &Path, jobs: usize) -> Result<(score::Report, String)> {
    write_report_with(settings, out, jobs, None)
}

/// The embedding model of `args`.
fn load_embedder(args: &ScoreSettings) -> Result<Box<dyn embed::Embedder>> {
    let embedder_dir = args.embedder.clone().unwrap_or_else(embed::default_model_dir);
    if args.embedder.is_none() && !embedder_dir.join("config.json").is_file() {
        return Err(BadInput(format!(
            "the default embedding model is missing from {}; run `runtimes/setup.sh`",
            embedder_dir.display()
        ))
        .into());
    }
    embed::load(&embedder_dir)
}

fn cache_dir(args: &ScoreSettings) -> PathBuf {
    args.embedding_cache.clone().unwrap_or_else(|| crate::sandbox::Runtime::default_dir().join("embeddings"))
}

/// [`write_report`], with the grades and vectors of score shards (`pre`) instead of grading and embedding.
fn write_report_with(
    args: &ScoreSettings,
    out: &Path,
    jobs: usize,
    pre: Option<&shards::Precomputed>,
) -> Result<(score::Report, String)> {
    let ctx = args.context();
    let (real, sims) = read_inputs(args)?;
    for name in args.figure_sets.iter().flatten() {
        if !sims.iter().any(|s| &s.name == name) {
            let names: Vec<&str> = sims.iter().map(|s| s.name.as_str()).collect();
            return Err(BadInput(format!(
                "--sets: no simulated set is named {name:?} (they are: {})",
                names.join(", ")
            ))
            .into());
        }
    }
    let inputs: Vec<&Input> = std::iter::once(&real).chain(&sims).collect();
    let embedder = load_embedder(args)?;
    let grader = ctx.grader(&args.limits, jobs)?;
    let rt = tokio_runtime(jobs)?;

    let (labels, pass_rates) = match pre {
        Some(pre) => grades_from_shards(&inputs, pre)?,
        None => rt.block_on(grade_missing(&ctx, &grader, &inputs, jobs))?,
    };
    let codes: Vec<&str> = inputs.iter().flat_map(|s| s.rows.iter().map(|(_, r)| r.code.as_str())).collect();
    let bar = progress(codes.len(), "style features");
    let mut styles = styles_parallel(rt.handle(), &grader, &codes, args.pep8_engine, jobs, &bar)?.into_iter();
    bar.finish_and_clear();

    let mut cache = EmbeddingCache::open(&cache_dir(args), embedder.id())?;
    for (key, vector) in pre.iter().flat_map(|p| &p.vectors) {
        if cache.get(key).is_none() {
            cache.insert(*key, vector.clone())?;
        }
    }
    let bar = progress(codes.len(), "embeddings");
    let mut vectors =
        embed::embed_cached(embedder.as_ref(), &mut cache, &codes, EMBED_BATCH, |done| bar.set_position(done as u64))?
            .into_iter();
    bar.finish_and_clear();

    let mut scored: Vec<ScoredSet> = inputs
        .iter()
        .zip(labels.into_iter().zip(pass_rates))
        .map(|(input, (labels, pass_rates))| {
            let n = input.rows.len();
            ScoredSet {
                name: input.name.clone(),
                rows: input.rows.iter().map(|(_, r)| r.clone()).collect(),
                labels,
                pass_rates,
                styles: styles.by_ref().take(n).collect(),
                embeddings: vectors.by_ref().take(n).collect(),
            }
        })
        .collect();
    let real_set = scored.remove(0);
    let options = Options { pep8: args.pep8, ..Options::default() };
    let report = score::evaluate(&real_set, &scored, &options);

    let sim_names: Vec<String> = scored.iter().map(|s| s.name.clone()).collect();
    let provenance =
        score::report::Provenance { real: &real.path.display().to_string(), sims: &sim_names, embedder: embedder.id() };
    let markdown = score::report::markdown(&report, &provenance);
    let metrics_json = serde_json::to_string_pretty(&report)? + "\n";
    let figures = score::plots::figures(&report, args.figure_sets.as_deref())?;
    let explorer = score::explorer::Explorer::new(&real_set, &scored);
    let html = score::html::render(&report, &provenance, &figures, &explorer)?;
    let pngs = figure_pngs(&figures)?;
    let mut files: Vec<(&str, &[u8])> = vec![
        ("metrics.json", metrics_json.as_bytes()),
        ("report.md", markdown.as_bytes()),
        ("report.html", html.as_bytes()),
    ];
    files.extend(figures.iter().map(|f| (f.file, f.svg.as_bytes())));
    files.extend(pngs.iter().map(|(name, png)| (name.as_str(), png.as_slice())));
    // All or none: a report whose figures come from another run than its tables would mislead.
    jsonl::write_all_atomically(files.iter().map(|(name, bytes)| (out.join(name), *bytes)))?;
    Ok((report, markdown))
}

/// Each figure as `NAME.png` beside its SVG, its text in the DejaVu Sans of the runtime folder; none (with a
/// warning) where an older set-up has not fetched the font.
fn figure_pngs(figures: &[score::plots::Figure]) -> Result<Vec<(String, Vec<u8>)>> {
    let path = crate::sandbox::Runtime::default_dir().join("dejavu-fonts/DejaVuSans.ttf");
    let Some(font) = std::fs::read(&path).ok().and_then(score::raster::Font::new) else {
        eprintln!(
            "warning: {} is missing: the figures are written as SVG only (run runtimes/setup.sh)",
            path.display()
        );
        return Ok(Vec::new());
    };
    figures
        .iter()
        .map(|f| {
            let png = score::raster::png(&f.svg, &font).map_err(|e| anyhow::anyhow!("drawing {}: {e}", f.file))?;
            Ok((f.file.replace(".svg", ".png"), png))
        })
        .collect()
}

/// Each set's labels and pass rates, row by row.
type Grades = (Vec<Vec<Label>>, Vec<Vec<f64>>);

/// Each row's own label and pass rate, where it has both (a row without either gets `compile` and 0 until graded).
fn own_grades(inputs: &[&Input]) -> Grades {
    let labels =
        inputs.iter().map(|s| s.rows.iter().map(|(_, r)| r.label.unwrap_or(Label::Compile)).collect()).collect();
    let pass_rates = inputs.iter().map(|s| s.rows.iter().map(|(_, r)| r.pass_rate.unwrap_or(0.0)).collect()).collect();
    (labels, pass_rates)
}

/// Whether `row` lacks a label or a pass rate, and so is graded.
fn needs_grade(row: &Submission) -> bool {
    row.label.is_none() || row.pass_rate.is_none()
}

/// The (set, row) of every row that needs a grade.
fn grade_todo(inputs: &[&Input]) -> Vec<(usize, usize)> {
    inputs
        .iter()
        .enumerate()
        .flat_map(|(s, input)| {
            input.rows.iter().enumerate().filter(|(_, (_, r))| needs_grade(r)).map(move |(i, _)| (s, i))
        })
        .collect()
}

/// What `grade_distinct` gets for the rows `todo` of `inputs`: each row's problem and code.
fn grade_items<'r>(
    inputs: &[&Input],
    problems: &HashMap<String, &'r Problem>,
    todo: &[(usize, usize)],
) -> Vec<(&'r Problem, String)> {
    todo.iter()
        .map(|&(s, i)| {
            let row = &inputs[s].rows[i].1;
            (problems[&row.problem], row.code.clone())
        })
        .collect()
}

/// The registry's problem for each row of `todo`.
fn todo_problems<'r>(
    ctx: &Context,
    registry: &'r Registry,
    inputs: &[&Input],
    todo: &[(usize, usize)],
) -> Result<HashMap<String, &'r Problem>> {
    let mut problems = HashMap::new();
    for (s, input) in inputs.iter().enumerate() {
        let rows =
            todo.iter().filter(|&&(t, _)| t == s).map(|&(_, i)| (input.rows[i].0, input.rows[i].1.problem.as_str()));
        problems.extend(registry_problems(
            ctx,
            registry,
            &input.path,
            rows,
            "rows without a label are graded against it; ",
        )?);
    }
    Ok(problems)
}

/// Labels and pass rates of every row: the row's own when it has both, else a fresh grade.
async fn grade_missing(ctx: &Context, grader: &Arc<Grader>, inputs: &[&Input], jobs: usize) -> Result<Grades> {
    let (mut labels, mut pass_rates) = own_grades(inputs);
    let todo = grade_todo(inputs);
    if todo.is_empty() {
        return Ok((labels, pass_rates));
    }
    let registry: Registry = ctx.registry()?;
    let problems = todo_problems(ctx, &registry, inputs, &todo)?;
    let items = grade_items(inputs, &problems, &todo);
    let bar = progress(todo.len(), "grading");
    let graded = grade_distinct(grader, items, jobs, &bar).await?;
    bar.finish_and_clear();
    for (&(s, i), g) in todo.iter().zip(graded) {
        labels[s][i] = g.record.label;
        pass_rates[s][i] = g.record.pass_rate;
    }
    Ok((labels, pass_rates))
}

/// Labels and pass rates of every row: the row's own when it has both, else the one a shard wrote.
fn grades_from_shards(inputs: &[&Input], pre: &shards::Precomputed) -> Result<Grades, BadInput> {
    let (mut labels, mut pass_rates) = own_grades(inputs);
    for (s, input) in inputs.iter().enumerate() {
        for (i, (line, row)) in input.rows.iter().enumerate() {
            if needs_grade(row) {
                let &(label, pass_rate) = pre.grades.get(&(s, i)).ok_or_else(|| {
                    BadInput(format!(
                        "{}:{line}: no shard graded this row (were the shards made from this file?)",
                        input.path.display()
                    ))
                })?;
                labels[s][i] = label;
                pass_rates[s][i] = pass_rate;
            }
        }
    }
    Ok((labels, pass_rates))
}
