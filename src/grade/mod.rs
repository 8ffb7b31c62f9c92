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
mod record;
pub mod source;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::problems::Problem;
pub use crate::records::{Compare, Label};
use crate::records::{PyToken, StyleProblem, TokenKind, TokenStream, TokenizeError};
use crate::sandbox::{Cancel, Fault, GuestState, Limits, Output, Runtime, Sandbox, Session};
pub use record::{ExampleRecord, GradeRecord, Outcome};

mod bindings {
    wasmtime::component::bindgen!({
        world: "grader",
        path: "runtimes/wit",
        exports: { default: async },
    });
}

use bindings::{Observed, Raised};

pub use record::{GOT_LIMIT, NAME_LIMIT, TEXT_LIMIT};

/// Settings of a [`Grader`]: the sandbox's limits (the output cap among them) are all it has.
#[derive(Debug, Clone, Default)]
pub struct GradeLimits {
    pub sandbox: Limits,
}

/// The doctest examples of one problem, grouped by docstring.
#[derive(Debug, Clone)]
pub struct Tests {
    groups: Vec<bindings::Group>,
    compare: Compare,
    /// The problem's own per-example limit, tighter than the sandbox's.
    example_limit: Option<Duration>,
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

    pub fn total(&self) -> usize {
        self.groups.iter().map(|g| g.examples.len()).sum()
    }

    /// A record per example, none run yet.
    fn not_run(&self) -> Vec<ExampleRecord> {
        self.groups
            .iter()
            .flat_map(|g| g.examples.iter().map(|e| ExampleRecord::not_run(&g.name, e.lineno, &e.source, &e.want)))
            .collect()
    }

    /// `(docstring owner, example source, expected output)` in order.
    pub fn examples(&self) -> impl Iterator<Item = (&str, &str, &str)> {
        self.groups
            .iter()
            .flat_map(|g| g.examples.iter().map(|e| (g.name.as_str(), e.source.as_str(), e.want.as_str())))
    }
}

/// Grades submissions; share one behind an `Arc` across tasks.
pub struct Grader {
    sandbox: Sandbox,
    pre: bindings::GraderPre<GuestState>,
    /// Each problem's parsed tests ([`Grader::tests_for`]), by everything they are made from.
    tests: Mutex<HashMap<TestsKey, Arc<Tests>>>,
}

/// What a problem's tests are made from: its id, its `todo` code, how it compares and its example limit.
type TestsKey = (String, String, Compare, Option<Duration>);

impl Grader {
    pub fn new(runtime: &Runtime, limits: GradeLimits) -> Result<Self> {
        let sandbox = Sandbox::new(runtime, limits.sandbox)?;
        let pre = bindings::GraderPre::new(sandbox.instance_pre().clone())
            .map_err(anyhow::Error::from)
            .context("the grader component does not export the `grader` world; rebuild it with runtimes/setup.sh")?;
        Ok(Self { sandbox, pre, tests: Mutex::new(HashMap::new()) })
    }

    /// [`Grader::problem_tests`], parsed once per grader and then shared.
    pub async fn tests_for(&self, problem: &Problem) -> Result<Arc<Tests>> {
        let key = (problem.id.clone(), problem.todo.clone(), problem.compare, problem.example_timeout());
        if let Some(tests) = self.tests.lock().expect("no panic while holding the lock").get(&key) {
            return Ok(Arc::clone(tests));
        }
        // Two tasks may both parse a new problem; both get equal tests, and the first kept is shared after.
        let tests = Arc::new(self.problem_tests(problem).await?);
        Ok(Arc::clone(self.tests.lock().expect("no panic while holding the lock").entry(key).or_insert(tests)))
    }

    /// A problem's tests: the examples of its `todo` code, compared as the problem says.
    pub async fn problem_tests(&self, problem: &Problem) -> Result<Tests> {
        Ok(self.parse_tests(&problem.todo).await?.comparing(problem.compare).limited(problem.example_timeout()))
    }

    /// Read the doctest examples from trusted problem code.
    pub async fn parse_tests(&self, source: &str) -> Result<Tests> {
        let mut session = self.sandbox.session(Instant::now(), &Cancel::default());
        let guest = self.instantiate(&mut session).await.context("starting the grader")?;
        let parsed = session
            .call(async |store| guest.call_parse_examples(store, source).await)
            .await
            .context("parsing doctests")?;
        match parsed {
            Ok(groups) => Ok(Tests { groups, compare: Compare::Output, example_limit: None }),
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
        self.grade_timed(fixed, submission, tests).await.0
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
            for example in &group.examples {
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
                let call_started = Instant::now();
                let result = session
                    .call_within(example_limit, async |store| {
                        guest.call_run_example(store, group_index as u32, source).await
                    })
                    .await;
                times[index] = call_started.elapsed();
                let output = session.take_output();
                let record = &mut examples[index];
                match result {
                    Ok(observed) => record.judge(example, tests.compare, observed, output),
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
        (GradeRecord::summarize(module_failure, examples), times)
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
        match loaded {
            Err(raised) => Err(ModuleFailure::Compile(raised)),
            Ok(Observed { exception: Some(raised) }) => Err(ModuleFailure::Raised(raised)),
            Ok(_) => Ok((session, guest)),
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
