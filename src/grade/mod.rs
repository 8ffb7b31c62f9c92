//! Doctest grading on top of the sandbox: four labels and a record per example.
//!
//! The problem's doctests are parsed once by CPython's own `DocTestParser` (in a fresh instance that runs no
//! submission). For each submission the guest compiles and runs the module, then runs each example and reports
//! what it raised; what it printed reaches the host through the sandbox's captured output (capped there). The
//! host compares that with the expected output it kept ([`checker`]).

pub mod batch;
pub mod calibrate;
pub mod checker;
pub mod literal;
mod memo;
mod record;
pub mod report;
pub mod source;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::problems::Problem;
pub use crate::records::{Compare, Label};
use crate::records::{PyToken, StyleProblem, TokenKind, TokenStream, TokenizeError};
use crate::sandbox::{Cancel, Fault, GuestState, Limits, Output, Runtime, Sandbox, Session};
pub use memo::GradeMemo;
pub use record::{ExampleRecord, GradeRecord, Outcome};

mod bindings {
    wasmtime::component::bindgen!({
        world: "grader",
        path: "runtimes/wit",
        exports: { default: async },
    });
}

use bindings::Ending;
use record::Raised;

pub use record::{GOT_LIMIT, NAME_LIMIT, TEXT_LIMIT};

/// Settings of a [`Grader`]: the sandbox's limits (the output cap among them), and whether its records keep hidden
/// examples' code and outputs (course staff grading for themselves; never for anything a student or model sees).
#[derive(Debug, Clone, Default)]
pub struct GradeLimits {
    pub sandbox: Limits,
    pub reveal_hidden: bool,
}

/// The doctest examples of one problem, grouped by docstring, then its hidden groups.
#[derive(Debug, Clone)]
pub struct Tests {
    groups: Vec<bindings::Group>,
    /// How each group of `groups` counts, in the same order.
    scoring: Vec<GroupScoring>,
    /// Each example's code, compiled and marshalled by a fresh interpreter ([`Grader::compiled`]), by group and
    /// example; `None` where it does not compile (the guest then compiles it in the grade and reports the error).
    /// Compiling the examples once per problem instead of in every grade saves most of an example's cost.
    compiled: Vec<Vec<Option<Vec<u8>>>>,
    compare: Compare,
    /// The problem's own per-example limit, tighter than the sandbox's.
    example_limit: Option<Duration>,
    /// Keep hidden examples' code and outputs in records (course staff only); else records show their outcome.
    reveal_hidden: bool,
}

/// Whether a group is hidden, and what each of its examples is worth.
#[derive(Debug, Clone, Copy, PartialEq)]
struct GroupScoring {
    hidden: bool,
    points_each: f64,
}

impl GroupScoring {
    const VISIBLE: Self = Self { hidden: false, points_each: 1.0 };
}

impl Tests {
    /// The same examples, compared on `compare`.
    pub fn comparing(self, compare: Compare) -> Self {
        Self { compare, ..self }
    }

    /// The same examples, each limited to `example_limit` when given (the sandbox's limit still caps it).
    pub fn limited(self, example_limit: Option<Duration>) -> Self {
        Self { example_limit, ..self }
    }

    /// The same examples, hidden ones kept whole in records when `reveal` (for course staff's own grading).
    pub fn revealing_hidden(self, reveal: bool) -> Self {
        Self { reveal_hidden: reveal, ..self }
    }

    pub fn total(&self) -> usize {
        self.groups.iter().map(|g| g.examples.len()).sum()
    }

    /// How many examples are hidden.
    pub fn hidden(&self) -> usize {
        self.groups.iter().zip(&self.scoring).filter(|(_, s)| s.hidden).map(|(g, _)| g.examples.len()).sum()
    }

    /// The points all examples are worth together.
    pub fn max_score(&self) -> f64 {
        self.groups.iter().zip(&self.scoring).map(|(g, s)| g.examples.len() as f64 * s.points_each).sum()
    }

    /// A record per example, none run yet.
    fn not_run(&self) -> Vec<ExampleRecord> {
        self.groups
            .iter()
            .zip(&self.scoring)
            .flat_map(|(g, s)| {
                g.examples.iter().map(|e| {
                    ExampleRecord::not_run(&g.name, e.lineno, &e.source, &e.want).scored(s.hidden, s.points_each)
                })
            })
            .collect()
    }

    /// `(docstring owner, example source, expected output)` of the visible examples, in order.
    pub fn examples(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.groups
            .iter()
            .zip(&self.scoring)
            .filter(|(_, s)| !s.hidden)
            .flat_map(|(g, _)| g.examples.iter().map(|e| (g.name.as_str(), e.source.as_str(), e.want.as_str())))
    }

    /// The compiled code of example `index` of group `group`, if [`Grader::compiled`] compiled it.
    fn compiled(&self, group: usize, index: usize) -> Option<&[u8]> {
        self.compiled.get(group)?.get(index)?.as_deref()
    }

    /// Give each example of the `todo` docstring owned by `owner` its share of `points`.
    fn set_points(&mut self, owner: &str, points: f64) -> Result<()> {
        let found = self.groups.iter().position(|g| g.name == owner && !g.examples.is_empty());
        let Some(index) = found else {
            let owners: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
            bail!("points.{owner}: no docstring of `todo` by that name has examples (those that do: {owners:?})");
        };
        self.scoring[index].points_each = points / self.groups[index].examples.len() as f64;
        Ok(())
    }
}

/// `text` as a Python string literal on one line, so it can be a module's docstring whatever quotes it holds.
fn python_string_literal(text: &str) -> String {
    let mut literal = String::with_capacity(text.len() + 2);
    literal.push('"');
    for c in text.chars() {
        match c {
            '\\' => literal.push_str("\\\\"),
            '"' => literal.push_str("\\\""),
            '\n' => literal.push_str("\\n"),
            c if c.is_control() => literal.push_str(&format!("\\U{:08x}", c as u32)),
            c => literal.push(c),
        }
    }
    literal.push('"');
    literal
}

/// Grades submissions; share one behind an `Arc` across tasks.
pub struct Grader {
    sandbox: Sandbox,
    pre: bindings::GraderPre<GuestState>,
    /// Each problem's parsed tests ([`Grader::tests_for`]), by the problem they are made from.
    tests: Mutex<HashMap<String, (Problem, Arc<Tests>)>>,
    limits: GradeLimits,
    /// Records of earlier grades that [`Grader::grade`] returns instead of grading again ([`Grader::remembering`]).
    memo: Option<Arc<GradeMemo>>,
}

impl Grader {
    pub fn new(runtime: &Runtime, limits: GradeLimits) -> Result<Self> {
        let sandbox = Sandbox::new(runtime, limits.sandbox.clone())?;
        let pre = bindings::GraderPre::new(sandbox.instance_pre().clone())
            .map_err(anyhow::Error::from)
            .context("the grader component does not export the `grader` world; rebuild it with runtimes/setup.sh")?;
        Ok(Self { sandbox, pre, tests: Mutex::new(HashMap::new()), limits, memo: None })
    }

    /// The same grader, whose [`Grader::grade`] keeps each record in `memo` and returns a kept one for the same
    /// code, tests and limits instead of grading again (share `memo` between the graders of one run). The timed and
    /// cancellable grades always run.
    pub fn remembering(self, memo: Arc<GradeMemo>) -> Self {
        Self { memo: Some(memo), ..self }
    }

    /// [`Grader::problem_tests`], parsed once per grader and problem and then shared (parsed again if a problem
    /// of the same id comes with other content).
    pub async fn tests_for(&self, problem: &Problem) -> Result<Arc<Tests>> {
        if let Some((seen, tests)) = self.tests.lock().expect("no panic while holding the lock").get(&problem.id)
            && seen == problem
        {
            return Ok(Arc::clone(tests));
        }
        let tests = Arc::new(self.problem_tests(problem).await?);
        let mut cache = self.tests.lock().expect("no panic while holding the lock");
        cache.insert(problem.id.clone(), (problem.clone(), Arc::clone(&tests)));
        Ok(tests)
    }

    /// A problem's tests: the examples of its `todo` code, then its hidden groups, with their points, compared as
    /// the problem says.
    pub async fn problem_tests(&self, problem: &Problem) -> Result<Tests> {
        let mut tests = self.parse_groups(&problem.todo).await?;
        for (owner, &points) in &problem.points {
            tests.set_points(owner, points)?;
        }
        for hidden in &problem.hidden {
            // The doctest text as a module's docstring: one group, its lines counted from the text's first.
            let parsed = self
                .parse_groups(&python_string_literal(&hidden.doctest))
                .await
                .with_context(|| format!("hidden group `{}`", hidden.name))?;
            let examples: Vec<bindings::Example> = parsed.groups.into_iter().flat_map(|g| g.examples).collect();
            if examples.is_empty() {
                bail!("hidden group `{}` has no doctest example", hidden.name);
            }
            let points_each = hidden.points.map_or(1.0, |p| p / examples.len() as f64);
            tests.groups.push(bindings::Group { name: hidden.name.clone(), examples });
            tests.scoring.push(GroupScoring { hidden: true, points_each });
        }
        let tests = self.compiled(tests).await?;
        Ok(tests
            .comparing(problem.compare)
            .limited(problem.example_timeout())
            .revealing_hidden(self.limits.reveal_hidden))
    }

    /// Read the doctest examples from trusted problem code.
    pub async fn parse_tests(&self, source: &str) -> Result<Tests> {
        let tests = self.parse_groups(source).await?;
        self.compiled(tests).await
    }

    /// `tests` with each example compiled once, in a fresh instance that runs no submission.
    async fn compiled(&self, mut tests: Tests) -> Result<Tests> {
        if tests.total() == 0 {
            return Ok(tests);
        }
        let sources: Vec<Vec<String>> =
            tests.groups.iter().map(|g| g.examples.iter().map(|e| e.source.clone()).collect()).collect();
        let mut session = self.sandbox.session(Instant::now(), &Cancel::default());
        let guest = self.instantiate(&mut session).await.context("starting the grader")?;
        // Only trusted examples run here, so a fault means one of them is too costly to compile in a call's time or
        // memory. Then every grade compiles its examples itself, under each example's own limit, as before.
        if let Ok(compiled) = session.call(async |store| guest.call_compile_examples(store, &sources).await).await {
            tests.compiled = compiled;
        }
        Ok(tests)
    }

    /// The doctest examples of trusted problem code, not compiled yet.
    async fn parse_groups(&self, source: &str) -> Result<Tests> {
        let mut session = self.sandbox.session(Instant::now(), &Cancel::default());
        let guest = self.instantiate(&mut session).await.context("starting the grader")?;
        let parsed = session
            .call(async |store| guest.call_parse_examples(store, source).await)
            .await
            .context("parsing doctests")?;
        match parsed {
            Ok(groups) => Ok(Tests {
                scoring: vec![GroupScoring::VISIBLE; groups.len()],
                compiled: Vec::new(),
                groups,
                compare: Compare::Output,
                example_limit: None,
                reveal_hidden: false,
            }),
            Err(message) => bail!("{message}"),
        }
    }

    /// pycodestyle 2.14.0 counts for `files` (default options), plain or in the reference study's wrapped mode.
    pub async fn pep8(&self, files: &[&str], wrapped: bool) -> Result<Vec<u32>> {
        Ok(self.pep8_problems(files, wrapped).await?.iter().map(|found| found.len() as u32).collect())
    }

    /// What pycodestyle 2.14.0 counts in each of `files`, problem by problem, in report order.
    pub async fn pep8_problems(&self, files: &[&str], wrapped: bool) -> Result<Vec<Vec<StyleProblem>>> {
        let found =
            self.in_batches(files, async |guest, store, batch| guest.call_pep8(store, batch, wrapped).await).await?;
        // The guest runs pycodestyle itself, so every code is one of its own; an unknown one means another
        // pycodestyle in the component, which the set-up pins.
        let problem = |p: bindings::StyleProblem| -> Result<StyleProblem> {
            Ok(StyleProblem { line: p.line, column: p.column, code: p.code.parse()? })
        };
        found.into_iter().map(|file| file.into_iter().map(problem).collect()).collect()
    }

    /// CPython 3.14's `tokenize` over each file's lines as pycodestyle reads them (plain or wrapped).
    pub async fn python_tokens(&self, files: &[&str], wrapped: bool) -> Result<Vec<TokenStream>> {
        let found = self
            .in_batches(files, async |guest, store, batch| guest.call_tokenize(store, batch, wrapped).await)
            .await?;
        let token = |t: bindings::PyToken| -> Result<PyToken> {
            let kind = TokenKind::from_number(t.kind)
                .with_context(|| format!("tokenize gave an unknown token type {}", t.kind))?;
            Ok(PyToken {
                kind,
                text: t.text,
                start: (t.start_line, t.start_column),
                end: (t.end_line, t.end_column),
                line: t.line.into(),
            })
        };
        found
            .into_iter()
            .map(|stream| {
                Ok(TokenStream {
                    tokens: stream.tokens.into_iter().map(token).collect::<Result<_>>()?,
                    error: stream.error.map(|e| TokenizeError {
                        type_name: e.type_name,
                        message: e.message,
                        line: e.line,
                        column: e.column,
                    }),
                })
            })
            .collect()
    }

    /// CPython's own AST (depth, width, nodes) for each stripped file; `None` when it does not parse.
    pub async fn ast_shapes(&self, files: &[&str]) -> Result<Vec<Option<(u32, u32, u32)>>> {
        let shapes =
            self.in_batches(files, async |guest, store, batch| guest.call_ast_shapes(store, batch).await).await?;
        Ok(shapes.into_iter().map(|shape| shape.map(|s| (s.depth, s.width, s.nodes))).collect())
    }

    /// Run a per-file export over `files` in batches, each batch in a fresh instance; no submission code runs.
    async fn in_batches<T>(
        &self,
        files: &[&str],
        call: impl AsyncFn(&bindings::Grader, &mut wasmtime::Store<GuestState>, &[String]) -> wasmtime::Result<Vec<T>>,
    ) -> Result<Vec<T>> {
        // Small enough that a batch of slow files (pycodestyle on long programs) stays well inside one call's limit.
        const BATCH: usize = 32;
        let mut out = Vec::with_capacity(files.len());
        for batch in files.chunks(BATCH) {
            let batch: Vec<String> = batch.iter().map(|f| (*f).to_owned()).collect();
            let mut session = self.sandbox.session(Instant::now(), &Cancel::default());
            let guest = self.instantiate(&mut session).await.context("starting the harness")?;
            let found =
                session.call(async |store| call(&guest, store, &batch).await).await.context("running the harness")?;
            out.extend(found);
        }
        Ok(out)
    }

    /// Grade `submission`, run after `fixed` in one module, against `tests`.
    pub async fn grade(&self, fixed: &str, submission: &str, tests: &Tests) -> GradeRecord {
        let Some(memo) = &self.memo else {
            return self.grade_timed(fixed, submission, tests).await.0;
        };
        let key = memo::key(&self.limits, fixed, submission, tests);
        if let Some(record) = memo.get(&key) {
            return record;
        }
        let record = self.grade_timed(fixed, submission, tests).await.0;
        memo.insert(key, record.clone());
        record
    }

    /// [`Grader::grade`] that `cancel` stops within an epoch tick: the examples it did not reach are `not_run`,
    /// the one it interrupted has the limit `cancelled`. For work nobody waits for any more (a client hung up).
    pub async fn grade_cancellable(
        &self,
        fixed: &str,
        submission: &str,
        tests: &Tests,
        cancel: &Cancel,
    ) -> GradeRecord {
        self.grade_with(fixed, submission, tests, cancel).await.0
    }

    /// [`Grader::grade`], with the wall-clock time each example's call took (zero for examples not run), which
    /// `problems check` calibrates limits from. Times stay out of the record, so records repeat to the byte.
    pub async fn grade_timed(&self, fixed: &str, submission: &str, tests: &Tests) -> (GradeRecord, Vec<Duration>) {
        self.grade_with(fixed, submission, tests, &Cancel::default()).await
    }

    async fn grade_with(
        &self,
        fixed: &str,
        submission: &str,
        tests: &Tests,
        cancel: &Cancel,
    ) -> (GradeRecord, Vec<Duration>) {
        let started = Instant::now();
        let mut examples = tests.not_run();
        let mut times = vec![Duration::ZERO; examples.len()];
        let example_limit = tests.example_limit.unwrap_or(Duration::MAX);
        let mut module_failure = None;
        let mut live: Option<(Session, bindings::Grader)> = None;
        let mut index = 0;
        'groups: for (group_index, group) in tests.groups.iter().enumerate() {
            for (example_index, example) in group.examples.iter().enumerate() {
                if live.is_none() {
                    // First example, or the previous one killed its instance: start over from the snapshot.
                    match self.start(started, fixed, submission, cancel).await {
                        Ok(fresh) => live = Some(fresh),
                        Err(failure) => {
                            if index == 0 {
                                module_failure = Some(failure);
                            } else if let ModuleFailure::Fault(fault) = &failure {
                                examples[index].fault(fault, &Output::default()); // typically: the submission's time ran out
                            }
                            break 'groups;
                        }
                    }
                }
                let (session, guest) = live.as_mut().expect("started above");
                let source = example.source.as_str();
                let compiled = tests.compiled(group_index, example_index);
                let call_started = Instant::now();
                let result = session
                    .call_within(example_limit, async |store| {
                        guest.call_run_example(store, group_index as u32, source, compiled).await
                    })
                    .await;
                times[index] = call_started.elapsed();
                let output = session.take_output();
                let record = &mut examples[index];
                match result {
                    Ok(ending) => record.judge(example, tests.compare, ending, output),
                    // A submission that hangs on one input nearly always hangs on the next ones too (most of the
                    // 31 Refactory programs that hang do), so a timeout ends the grade instead of spending the
                    // per-example limit again on every remaining example. A cancelled grade stops too. Other faults
                    // are cheap: go on.
                    Err(fault @ (Fault::Timeout | Fault::Fuel | Fault::Cancelled)) => {
                        record.fault(&fault, &output);
                        break 'groups;
                    }
                    Err(fault) => {
                        record.fault(&fault, &output);
                        live = None;
                    }
                }
                index += 1;
            }
        }
        if !tests.reveal_hidden {
            examples.iter_mut().for_each(ExampleRecord::conceal_if_hidden);
        }
        (GradeRecord::summarize(module_failure, submission, examples), times)
    }

    /// A fresh instance with the submission loaded, or why the module could not be loaded.
    async fn start(
        &self,
        started: Instant,
        fixed: &str,
        submission: &str,
        cancel: &Cancel,
    ) -> Result<(Session, bindings::Grader), ModuleFailure> {
        let mut session = self.sandbox.session(started, cancel);
        let guest = self.instantiate(&mut session).await.map_err(ModuleFailure::Fault)?;
        let loaded = session
            .call(async |store| guest.call_load(store, fixed, submission).await)
            .await
            .map_err(ModuleFailure::Fault)?;
        let mut output = session.take_output();
        match loaded {
            Err(()) => Err(ModuleFailure::Compile(Raised::reported(&mut output))),
            Ok(Ending::Raised) => Err(ModuleFailure::Raised(Raised::reported(&mut output))),
            Ok(Ending::Returned) => Ok((session, guest)),
        }
    }

    async fn instantiate(&self, session: &mut Session) -> Result<bindings::Grader, Fault> {
        let pre = &self.pre;
        session.call(async |store| pre.instantiate_async(store).await).await
    }
}

/// Why the module (fixed code + submission) did not load.
#[derive(Debug)]
enum ModuleFailure {
    Compile(Raised),
    Raised(Raised),
    Fault(Fault),
}
