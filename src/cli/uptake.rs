//! `studentsim feedback-uptake`: does a generator act on what the grader showed it? For every transition from an
//! attempt that was shown failing examples to the next attempt, whether the next attempt passes at least one of
//! them ([`fixes_shown`]), as a share per set, beside the real students' share on the same transitions. Every
//! attempt involved is graded again in the sandbox (each distinct program once) for its per-example outcomes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Args;

use super::output::progress;
use super::{Context, LimitArgs, default_jobs, read_rows, registry_problems, tokio_runtime};
use crate::cli::score::SimArg;
use crate::generate::fixes_shown;
use crate::grade::GradeRecord;
use crate::grade::batch::grade_many;
use crate::rollout::output::{RowKey, key};
use crate::trajectory::{Submission, views};

#[derive(Debug, Args)]
#[command(after_help = "Next steps (the default): each simulated row is paired with the real row it stands for \
    (student, problem, attempt), and its previous attempt is the real one before that row, whose failing examples \
    a `rollout next-step --feedback` prompt showed; the real students' share is over the same transitions. With \
    --streams each set's own consecutive attempts are the transitions (a stream shows each attempt's feedback to \
    the next). A transition counts when the previous attempt showed at least one failing example (the first three \
    that failed, as a FEEDBACK section shows them); it is fixed when the next attempt passes one of those.\n\nExamples:\n  studentsim feedback-uptake --real split/ns_op.jsonl --sim edits=sims/edits.jsonl")]
pub struct UptakeArgs {
    /// The real rows (the input the rollouts were made from).
    #[arg(long, value_name = "JSONL")]
    real: PathBuf,
    /// A simulated set, `[NAME=]JSONL` as `score` takes it (unnamed: its file's name); repeat for several.
    #[arg(long = "sim", value_name = "[NAME=]JSONL", required = true)]
    sims: Vec<SimArg>,
    /// Real predecessors of the next-step rollouts (the transitions are the same for every k; k only picks which
    /// targets exist).
    #[arg(long, default_value_t = 3)]
    k: usize,
    /// The sets are streams: compare each set's own consecutive attempts.
    #[arg(long)]
    streams: bool,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
    /// Submissions graded in parallel [default: number of cores].
    #[arg(long, short, value_name = "N", default_value_t = default_jobs(), hide_default_value = true)]
    jobs: usize,
    #[command(flatten)]
    limits: LimitArgs,
}

/// One set's transitions.
#[derive(Debug)]
struct Uptake {
    set: String,
    /// Transitions whose previous attempt showed a failing example.
    shown: usize,
    /// Of those, next attempts that pass at least one of them.
    fixed: usize,
    /// Of those, next attempts identical to the previous one.
    unchanged: usize,
}

impl Uptake {
    fn share(&self, n: usize) -> Option<f64> {
        (self.shown > 0).then(|| n as f64 / self.shown as f64)
    }
}

/// The (previous, next) row pairs of one set.
fn transitions<'a>(
    real: &'a [Submission],
    set: &'a [Submission],
    k: usize,
    streams: bool,
) -> Vec<(&'a Submission, &'a Submission)> {
    if streams {
        let mut rows: Vec<&Submission> = set.iter().collect();
        rows.sort_by(|a, b| (&a.student, &a.problem, a.attempt).cmp(&(&b.student, &b.problem, b.attempt)));
        return rows
            .windows(2)
            .filter(|w| w[0].student == w[1].student && w[0].problem == w[1].problem)
            .map(|w| (w[0], w[1]))
            .collect();
    }
    let by_key: HashMap<RowKey, &Submission> = set.iter().map(|r| (key(r), r)).collect();
    views::next_steps(real, k)
        .into_iter()
        .filter_map(|item| {
            let previous = &real[*item.priors.last()?];
            by_key.get(&key(&real[item.target])).map(|&next| (previous, next))
        })
        .collect()
}

pub fn run(ctx: &Context, args: &UptakeArgs) -> Result<ExitCode> {
    let real: Vec<Submission> = read_rows(&args.real)?.into_iter().map(|(_, r)| r).collect();
    let mut sets = vec![("real".to_owned(), real.clone())];
    for SimArg { name, path } in &args.sims {
        let name = name
            .clone()
            .unwrap_or_else(|| path.file_stem().map_or_else(|| "sim".to_owned(), |s| s.to_string_lossy().into_owned()));
        sets.push((name, read_rows(path)?.into_iter().map(|(_, r)| r).collect()));
    }
    let pairs: Vec<Vec<(&Submission, &Submission)>> =
        sets.iter().map(|(_, rows)| transitions(&real, rows, args.k, args.streams)).collect();

    let registry = ctx.registry()?;
    let all_rows = pairs.iter().flatten().flat_map(|&(a, b)| [a, b]);
    let problems =
        registry_problems(ctx, &registry, &args.real, all_rows.clone().map(|r| (0, r.problem.as_str())), "")?;
    let mut distinct: HashMap<(&str, &str), usize> = HashMap::new();
    let mut order = Vec::new();
    for row in all_rows {
        distinct.entry((row.problem.as_str(), row.code.as_str())).or_insert_with(|| {
            order.push(row);
            order.len() - 1
        });
    }
    let rt = tokio_runtime(args.jobs)?;
    let grader = ctx.grader(&args.limits, args.jobs)?;
    let records: Vec<GradeRecord> = rt.block_on(async {
        let items = order.iter().map(|row| (problems[&row.problem], row.code.clone())).collect();
        let bar = progress(order.len(), "grading");
        let graded = grade_many(&grader, items, args.jobs, &bar).await?;
        bar.finish_and_clear();
        anyhow::Ok(graded.into_iter().map(|g| g.record).collect())
    })?;
    let record = |row: &Submission| &records[distinct[&(row.problem.as_str(), row.code.as_str())]];

    let uptakes: Vec<Uptake> = sets
        .iter()
        .zip(&pairs)
        .map(|((name, _), pairs)| {
            let mut u = Uptake { set: name.clone(), shown: 0, fixed: 0, unchanged: 0 };
            for &(previous, next) in pairs {
                if let Some(fixed) = fixes_shown(record(previous), record(next)) {
                    u.shown += 1;
                    u.fixed += usize::from(fixed);
                    u.unchanged += usize::from(previous.code == next.code);
                }
            }
            u
        })
        .collect();
    if args.json {
        let sets: Vec<serde_json::Value> = uptakes
            .iter()
            .map(|u| serde_json::json!({"set": u.set, "shown": u.shown, "fixed": u.fixed, "unchanged": u.unchanged, "fixed_share": u.share(u.fixed), "unchanged_share": u.share(u.unchanged)}))
            .collect();
        println!("{}", serde_json::json!({ "streams": args.streams, "sets": sets }));
    } else {
        print!("{}", markdown(&uptakes));
    }
    Ok(ExitCode::SUCCESS)
}

fn markdown(uptakes: &[Uptake]) -> String {
    let pct = |u: &Uptake, n: usize| match u.share(n) {
        Some(p) => format!("{:.1}% ± {:.1}", 100.0 * p, 100.0 * (p * (1.0 - p) / u.shown as f64).sqrt()),
        None => "–".to_owned(),
    };
    let mut w = String::from(
        "| set | transitions with failing examples shown | next attempt fixes one of them | next attempt unchanged |\n|---|---:|---:|---:|\n",
    );
    for u in uptakes {
        w.push_str(&format!("| {} | {} | {} | {} |\n", u.set, u.shown, pct(u, u.fixed), pct(u, u.unchanged)));
    }
    w
}
