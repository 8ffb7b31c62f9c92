//! `studentsim leaderboard`: every generator on the held-out students of one dataset, in every mode, scored
//! against the real rows, and one leaderboard per split and mode. It runs the same subcommands a user would
//! (`split`, `rollout`, `score`) and keeps their outputs beside the leaderboards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, Result, ensure};
use clap::{Args, ValueEnum as _};

use super::{Context, default_jobs};
use crate::cli::generators::{GeneratorArgs, GeneratorName};
use crate::cli::rollout::{self, CommonArgs, TutorArgs, execute};
use crate::cli::score::{ScoreSettings, SimArg, write_report};
use crate::cli::trajectories::split_into;
use crate::generate::qwen::Layout;
use crate::problems::Registry;
use crate::rollout::ShownFeedback;
use crate::score::leaderboard::Leaderboard;
use crate::score::tutor::{TutorEffect, tutor_effect};
use crate::trajectory::split::SplitSpec;
use crate::trajectory::{self, Submission, sample};
use crate::{BadInput, jsonl};

#[derive(Debug, Args)]
#[command(after_help = "Writes into --out: leaderboards.md and leaderboards.json, and per split and mode the \
    rollouts and the full `score` report (SPLIT/MODE/). Modes: next-step with k = 1 and 3 real predecessors, each \
    without and with the student's context, and autoregressive streams.\n\n\
    Generators: copy-last, reference, retrieval and edits (fitted on the train part) everywhere; the in-process \
    Qwen GGUF with --qwen (prompted, chat layout), qwen-student with --qwen-adapter (the same GGUF with a trained \
    adapter) and a served model with --openai-model, in one next-step mode (the study's k = 3 with context, or the \
    layout the adapter was trained on) and streams, on a seeded sample of whole streams when the split has more than --llm-sample targets \
    (or --llm-streams streams). A sampled run gets its own leaderboard, with every generator on the same sample. \
    The language models are left out unless asked for: on two cores one attempt takes 10-60 s, the rest of the \
    bench seconds.\n\nExamples:\n  studentsim leaderboard\n  studentsim leaderboard --data nc --split-seed 1 --qwen")]
pub struct LeaderboardArgs {
    /// A folder with problems/ and trajectories.jsonl, as `import` writes it [default: the bundled problems and
    /// examples].
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// Folder for the leaderboards and everything behind them (replaced on every run, except rollouts of the
    /// language models, which resume).
    #[arg(long = "output", short, alias = "out", value_name = "DIR", default_value = "studentsim-leaderboard")]
    out: PathBuf,
    /// Seed of the split (NewCaledonia in docs/results.md: 1).
    #[arg(long, default_value_t = 0)]
    split_seed: u64,
    /// Share of students held out.
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    test_students: f64,
    /// Share of problems held out (the NS_NP problems).
    #[arg(long, value_name = "SHARE", default_value_t = 0.2)]
    test_problems: f64,
    /// Seed of every rollout and of the language models' sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Run the in-process Qwen2.5-Coder GGUF that `runtimes/setup.sh` fetched (or --gguf FILE).
    #[arg(long)]
    qwen: bool,
    /// The GGUF for --qwen and --qwen-adapter [default: the fetched Qwen2.5-Coder-0.5B-Instruct].
    #[arg(long, value_name = "FILE")]
    gguf: Option<PathBuf>,
    /// Also run qwen-student: the GGUF with this LoRA adapter (a `studentsim train` OUT, with its training card),
    /// in the fine-tuned layout and the prompt it was trained on (k, context and feedback from the card). The
    /// language models' next-step mode is then that one (every generator runs in it too) instead of the
    /// study's k = 3 with context, and their streams show the last k attempts.
    #[arg(long, value_name = "DIR")]
    qwen_adapter: Option<PathBuf>,
    /// Also run a model served over an OpenAI-compatible API, by the name it is served as.
    #[arg(long, value_name = "NAME")]
    openai_model: Option<String>,
    /// API root of --openai-model.
    #[arg(long, value_name = "URL", default_value = "http://localhost:8000/v1", requires = "openai_model")]
    base_url: String,
    /// Next-step targets the language models get per split at most (whole streams in a seeded order).
    #[arg(long, value_name = "TARGETS", default_value_t = 150)]
    llm_sample: usize,
    /// Streams the language models get per split at most.
    #[arg(long, value_name = "STREAMS", default_value_t = 40)]
    llm_streams: usize,
    /// Take the language models' samples from DIR/SPLIT-next.jsonl and DIR/SPLIT-streams.jsonl instead (the
    /// files `runtimes/sample-streams.py` writes).
    #[arg(long, value_name = "DIR")]
    samples: Option<PathBuf>,
    /// Attempts after which a simulated stream stops.
    #[arg(long, default_value_t = 10)]
    max_attempts: u32,
    /// A tutor bot (run with `sh -c`, as `rollout stream --tutor`): every stream generator also runs on the same
    /// streams with its hints, and the effect is reported (pass-rate curve shift, attempts until passing, share
    /// of streams that pass, hint leakage); a generator whose attempts do not change is marked hint-blind.
    #[arg(long, value_name = "CMD")]
    tutor: Option<String>,
    /// A hint whose code is at least this similar to the reference solution leaks it.
    #[arg(long, value_name = "SHARE", default_value_t = 0.8)]
    leak_similarity: f64,
    /// Rollout and scoring jobs at once [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true)]
    jobs: usize,
}

/// A rollout mode of the leaderboards.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `feedback`: the previous real attempt's grade is shown (`rollout next-step --feedback`).
    NextStep {
        k: usize,
        context: bool,
        feedback: bool,
    },
    Stream,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::NextStep { k: 1, context: false, feedback: false },
        Mode::NextStep { k: 1, context: true, feedback: false },
        Mode::NextStep { k: 3, context: false, feedback: false },
        Mode::NextStep { k: 3, context: true, feedback: false },
        Mode::Stream,
    ];

    /// The study's setting for the language models' next steps.
    const STUDYS: Mode = Mode::NextStep { k: 3, context: true, feedback: false };

    fn name(self) -> String {
        match self {
            Mode::NextStep { k, context, feedback } => {
                format!("next-k{k}{}{}", if context { "-context" } else { "" }, if feedback { "-feedback" } else { "" })
            }
            Mode::Stream => "stream".into(),
        }
    }

    /// The rollout of this mode, with streams of up to `max_attempts` showing the last `history` attempts.
    fn rollout(self, max_attempts: u32, history: Option<usize>, tutor: TutorArgs) -> rollout::Mode {
        match self {
            Mode::NextStep { k, context, feedback } => {
                rollout::Mode::NextStep { k, context, feedback: feedback.then_some(ShownFeedback::Own) }
            }
            Mode::Stream => rollout::Mode::stream(max_attempts, history, tutor),
        }
    }
}

/// The prompt a qwen-student adapter was trained on, from its training card (`studentsim train`).
struct TrainedLayout {
    k: usize,
    context: bool,
    feedback: bool,
}

impl TrainedLayout {
    fn read(adapter: &Path) -> Result<Self> {
        let path = adapter.join("training-card.json");
        let text = std::fs::read_to_string(&path).map_err(|e| {
            BadInput(format!("--qwen-adapter: {}: {e} (a `studentsim train` OUT has one)", path.display()))
        })?;
        let card: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| BadInput(format!("--qwen-adapter: {}: {e}", path.display())))?;
        let rows = &card["rows"];
        let k = rows["k"].as_array().and_then(|ks| ks.iter().filter_map(serde_json::Value::as_u64).max());
        let (Some(k), Some(context), Some(feedback)) = (k, rows["context"].as_str(), rows["feedback"].as_bool()) else {
            return Err(BadInput(format!(
                "--qwen-adapter: {}: no rows.k, rows.context and rows.feedback",
                path.display()
            ))
            .into());
        };
        Ok(Self { k: k as usize, context: context == "with", feedback })
    }
}

const CHEAP: [GeneratorName; 4] =
    [GeneratorName::CopyLast, GeneratorName::Reference, GeneratorName::Retrieval, GeneratorName::Edits];

/// A generator of the leaderboards: its name in the leaderboards and its rollout options.
struct Generator {
    name: String,
    args: GeneratorArgs,
    /// In stream mode, the attempts each request shows [default: all].
    history: Option<usize>,
    /// A language model: the language models' modes only, sampled, resumed.
    slow: bool,
}

struct Boards<'a> {
    args: &'a LeaderboardArgs,
    /// The next-step mode the language models run in.
    llm_next: Mode,
    /// The dataset's problems, and the runtime.
    ctx: Context,
    train: PathBuf,
    /// Reference solutions by problem, for hint leakage.
    solutions: HashMap<String, String>,
    boards: Vec<Leaderboard>,
    /// Per stream leaderboard with a tutor: its title and each generator's tutor effect.
    tutor_effects: Vec<(String, Vec<TutorEffect>)>,
}

pub fn run(ctx: &Context, args: LeaderboardArgs) -> Result<ExitCode> {
    let started = Instant::now();
    let (problems, rows) = super::dataset(args.data.as_deref())?;
    let layout = args.qwen_adapter.as_deref().map(TrainedLayout::read).transpose()?;
    let generators = generators(ctx, &args, layout.as_ref())?;
    let llm_next =
        layout.as_ref().map_or(Mode::STUDYS, |l| Mode::NextStep { k: l.k, context: l.context, feedback: l.feedback });
    let mut modes = Mode::ALL.to_vec();
    if !modes.contains(&llm_next) {
        modes.insert(modes.len() - 1, llm_next);
    }
    if !generators.iter().any(|g| g.slow) {
        eprintln!(
            "leaderboard: language models left out (--qwen for the fetched Qwen GGUF, --qwen-adapter DIR for qwen-student, --openai-model for a served one)"
        );
    }
    let split_dir = args.out.join("split");
    if split_dir.exists() {
        std::fs::remove_dir_all(&split_dir).with_context(|| format!("clearing {}", split_dir.display()))?;
    }
    let solutions = Registry::load(&problems)?.iter().map(|p| (p.id.clone(), p.solution.clone())).collect();
    let mut boards = Boards {
        args: &args,
        llm_next,
        ctx: ctx.with_problems(problems),
        train: split_dir.join("train.jsonl"),
        solutions,
        boards: Vec::new(),
        tutor_effects: Vec::new(),
    };
    let spec =
        SplitSpec { seed: args.split_seed, test_students: args.test_students, test_problems: args.test_problems };
    boards.step("split", || split_into(&rows, &split_dir, &spec))?;

    for split in ["ns_op", "ns_np"] {
        let real_file = split_dir.join(format!("{split}.jsonl"));
        let real: Vec<Submission> = trajectory::read(&real_file)?;
        if sample::targets(&real) == 0 {
            eprintln!("leaderboard: {split} has no stream with two attempts; skipped");
            continue;
        }
        for &mode in &modes {
            boards.mode(split, mode, &real_file, &real, &generators)?;
        }
    }
    let mut markdown: String = boards.boards.iter().map(|b| b.markdown() + "\n").collect();
    for (title, effects) in &boards.tutor_effects {
        markdown.push_str(&tutor_markdown(title, effects));
    }
    jsonl::write_atomically(&args.out.join("leaderboards.md"), |w| Ok(w.write_all(markdown.as_bytes())?))?;
    let json = serde_json::to_string_pretty(&boards.boards)? + "\n";
    jsonl::write_atomically(&args.out.join("leaderboards.json"), |w| Ok(w.write_all(json.as_bytes())?))?;
    if args.tutor.is_some() {
        let effects: Vec<serde_json::Value> = boards
            .tutor_effects
            .iter()
            .map(|(title, e)| serde_json::json!({"title": title, "generators": e}))
            .collect();
        let json = serde_json::to_string_pretty(&effects)? + "\n";
        jsonl::write_atomically(&args.out.join("tutor.json"), |w| Ok(w.write_all(json.as_bytes())?))?;
    }
    println!("{markdown}");
    eprintln!(
        "leaderboard: done in {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        args.out.join("leaderboards.md").display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The generators to run: the cheap ones always, the language models when asked for.
fn generators(ctx: &Context, args: &LeaderboardArgs, layout: Option<&TrainedLayout>) -> Result<Vec<Generator>> {
    let named = |generator: GeneratorName| GeneratorArgs { generator: Some(generator), ..GeneratorArgs::default() };
    let mut all: Vec<Generator> = CHEAP
        .iter()
        .map(|&g| Generator {
            name: g.to_possible_value().expect("not hidden").get_name().to_owned(),
            args: named(g),
            history: None,
            slow: false,
        })
        .collect();
    let gguf = || -> Result<PathBuf> {
        let file = args.gguf.clone().unwrap_or_else(|| crate::generate::qwen::fetched_gguf(&ctx.runtime_dir()));
        if !file.is_file() {
            return Err(
                BadInput(format!("{} not found; run `runtimes/setup.sh` or pass --gguf FILE", file.display())).into()
            );
        }
        Ok(file)
    };
    // One sequence at a time, so a row's logits never depend on which others were decoded beside it.
    let qwen = |gguf: PathBuf, adapter: Option<PathBuf>, layout: Layout| {
        let mut generator = named(GeneratorName::Qwen);
        (generator.qwen.gguf, generator.qwen.adapter) = (Some(gguf), adapter);
        (generator.qwen.layout, generator.qwen.batch) = (layout, 1);
        generator
    };
    if args.qwen {
        all.push(Generator { name: "qwen".into(), args: qwen(gguf()?, None, Layout::Chat), history: None, slow: true });
    }
    if let (Some(adapter), Some(layout)) = (&args.qwen_adapter, layout) {
        all.push(Generator {
            name: "qwen-student".into(),
            args: qwen(gguf()?, Some(adapter.clone()), Layout::FineTuned),
            history: Some(layout.k),
            slow: true,
        });
    }
    if let Some(model) = &args.openai_model {
        let mut generator = named(GeneratorName::Openai);
        (generator.openai.model, generator.openai.base_url) = (Some(model.clone()), args.base_url.clone());
        all.push(Generator { name: model.clone(), args: generator, history: None, slow: true });
    }
    Ok(all)
}

impl Boards<'_> {
    /// One mode of one split: the full leaderboard (every generator that runs in this mode on every real
    /// stream), and, when the language models needed a sample, a second one on that sample.
    fn mode(
        &mut self,
        split: &str,
        mode: Mode,
        real_file: &Path,
        real: &[Submission],
        generators: &[Generator],
    ) -> Result<()> {
        let slow: Vec<&Generator> =
            generators.iter().filter(|g| g.slow && (mode == self.llm_next || mode == Mode::Stream)).collect();
        let sampled = match mode {
            Mode::NextStep { .. } => sample::targets(real) > self.args.llm_sample,
            Mode::Stream => trajectory::streams(real).len() > self.args.llm_streams,
        } || self.args.samples.is_some();
        let dir = self.args.out.join(split).join(mode.name());
        let whole: Vec<&Generator> =
            generators.iter().filter(|g| !g.slow || (!sampled && slow.iter().any(|s| s.name == g.name))).collect();
        let title = format!(
            "{split}, {}: {} real streams, {} next-step targets",
            mode.name(),
            trajectory::streams(real).len(),
            sample::targets(real)
        );
        self.run_and_score(&dir, real_file, mode, &whole, title)?;
        if sampled && !slow.is_empty() {
            let sample_file = self.sample(split, mode, real)?;
            let rows: Vec<Submission> = trajectory::read(&sample_file)?;
            let on_sample: Vec<&Generator> =
                generators.iter().filter(|g| !g.slow || slow.iter().any(|s| s.name == g.name)).collect();
            let title = format!(
                "{split}, {} on a seeded sample: {} real streams, {} next-step targets",
                mode.name(),
                trajectory::streams(&rows).len(),
                sample::targets(&rows)
            );
            self.run_and_score(
                &dir.with_file_name(format!("{}-sample", mode.name())),
                &sample_file,
                mode,
                &on_sample,
                title,
            )?;
        }
        Ok(())
    }

    /// The language models' sample of `real` for `mode`, written beside the split (or named by --samples).
    fn sample(&self, split: &str, mode: Mode, real: &[Submission]) -> Result<PathBuf> {
        let kind = if matches!(mode, Mode::Stream) { "streams" } else { "next" };
        if let Some(dir) = &self.args.samples {
            let file = dir.join(format!("{split}-{kind}.jsonl"));
            ensure!(file.is_file(), BadInput(format!("--samples: {} not found", file.display())));
            return Ok(file);
        }
        let rows = match mode {
            Mode::Stream => sample::streams_of(real, self.args.llm_streams, self.args.seed),
            Mode::NextStep { .. } => sample::for_targets(real, self.args.llm_sample, self.args.seed),
        };
        let file = self.args.out.join("split").join(format!("{split}-sample-{kind}.jsonl"));
        jsonl::write(&file, &rows)?;
        Ok(file)
    }

    /// Roll out every generator of `generators` on `real_file` into `dir`, score them, keep the leaderboard.
    fn run_and_score(
        &mut self,
        dir: &Path,
        real_file: &Path,
        mode: Mode,
        generators: &[&Generator],
        title: String,
    ) -> Result<()> {
        let (seed, jobs, attempts) = (self.args.seed, self.args.jobs, self.args.max_attempts);
        let mut sims = Vec::new();
        let mut effects = Vec::new();
        for g in generators {
            let file = dir.join(format!("{}.jsonl", g.name));
            if !g.slow && file.exists() {
                std::fs::remove_file(&file).with_context(|| format!("clearing {}", file.display()))?;
            }
            let generator = GeneratorArgs { train: Some(self.train.clone()), ..g.args.clone() };
            let rollout = CommonArgs::new(real_file.to_owned(), file.clone(), generator.clone(), seed, jobs);
            let own = mode.rollout(attempts, g.history, TutorArgs::default());
            self.step(&format!("{title}: {}", g.name), || execute(&self.ctx, &rollout, &own))?;
            if let (Mode::Stream, Some(tutor)) = (mode, &self.args.tutor) {
                let hinted = dir.join(format!("{}-tutor.jsonl", g.name));
                if !g.slow && hinted.exists() {
                    std::fs::remove_file(&hinted).with_context(|| format!("clearing {}", hinted.display()))?;
                }
                let rollout = CommonArgs::new(real_file.to_owned(), hinted.clone(), generator, seed, jobs);
                let tutor = TutorArgs::command(tutor.clone());
                let with_hints = mode.rollout(attempts, g.history, tutor);
                self.step(&format!("{title}: {} with the tutor", g.name), || {
                    execute(&self.ctx, &rollout, &with_hints)
                })?;
                let rows = |path: &Path| -> Result<Vec<Submission>> { Ok(trajectory::read(path)?) };
                effects.push(tutor_effect(
                    &g.name,
                    &rows(&file)?,
                    &rows(&hinted)?,
                    &self.solutions,
                    self.args.leak_similarity,
                ));
            }
            sims.push(SimArg { name: Some(g.name.clone()), path: file });
        }
        eprintln!("leaderboard: scoring {title}");
        let score = ScoreSettings::new(&self.ctx, real_file.to_owned(), sims);
        let (report, _) = write_report(&score, &dir.join("report"), jobs)?;
        let mut board = match mode {
            Mode::NextStep { .. } => Leaderboard::next_step(title.clone(), &report),
            Mode::Stream => Leaderboard::streams(title.clone(), &report),
        };
        board.hint_blind = effects.iter().filter(|e| e.hint_blind).map(|e| e.generator.clone()).collect();
        self.boards.push(board);
        if !effects.is_empty() {
            self.tutor_effects.push((title, effects));
        }
        Ok(())
    }

    /// Say which step of the leaderboards runs, run it, and name the step in its error.
    fn step(&self, what: &str, run: impl FnOnce() -> Result<()>) -> Result<()> {
        eprintln!("leaderboard: {what}");
        run().with_context(|| format!("leaderboard: {what}"))
    }
}

/// The tutor's effect on each generator of one stream leaderboard.
fn tutor_markdown(title: &str, effects: &[TutorEffect]) -> String {
    let pct = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{:.1}%", 100.0 * v));
    let num = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
    let mut w = format!(
        "### {title}: with and without the tutor\n\n| generator | streams passing (without → with) | attempts to pass | \
         pass-rate curve shift | hints | leaking hints | hint-blind |\n|---|---:|---:|---:|---:|---:|---|\n"
    );
    for e in effects {
        w.push_str(&format!(
            "| {} | {} → {} | {} → {} | {} | {} | {} | {} |\n",
            e.generator,
            pct(e.passing[0]),
            pct(e.passing[1]),
            num(e.attempts_to_pass[0]),
            num(e.attempts_to_pass[1]),
            num(e.pass_curve_shift),
            e.hints,
            pct(e.leaked),
            if e.hint_blind { "yes" } else { "no" }
        ));
    }
    w + "\n"
}
