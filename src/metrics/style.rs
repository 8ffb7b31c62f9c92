//! Style features of many programs at once: sizes, AST shape, PEP 8 counts (native or sandboxed pycodestyle).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{AstShape, ast_shape, chars, lines, pep8};
use crate::grade::Grader;
use crate::records::Progress;
use tokio::runtime::Handle;

/// The style features of one program.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Style {
    pub lines: usize,
    pub chars: usize,
    pub ast_depth: i32,
    pub ast_width: i32,
    pub ast_nodes: i32,
    /// pycodestyle on the code exactly as submitted.
    pub pep8: u32,
    /// The reference study's wrapped count.
    pub pep8_wrapped: u32,
}

/// AST shapes equal to CPython's: rustpython where it parses, CPython itself (in the sandbox) for the rest.
pub async fn ast_shapes(grader: &Grader, codes: &[&str]) -> Result<Vec<AstShape>> {
    let mut shapes: Vec<Option<AstShape>> = codes.iter().map(|c| ast_shape(c)).collect();
    let refused: Vec<usize> = (0..codes.len()).filter(|&i| shapes[i].is_none()).collect();
    let refused_codes: Vec<&str> = refused.iter().map(|&i| codes[i]).collect();
    for (i, shape) in refused.into_iter().zip(grader.ast_shapes(&refused_codes).await?) {
        // Sizes are far below i32::MAX: a file's nodes fit in the guest's memory.
        let signed = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        shapes[i] = Some(shape.map_or(AstShape::UNPARSABLE, |(depth, width, nodes)| AstShape {
            depth: signed(depth),
            width: signed(width),
            nodes: signed(nodes),
        }));
    }
    Ok(shapes.into_iter().map(|s| s.expect("every refused program was filled in")).collect())
}

/// Which pycodestyle counts the PEP 8 problems: the port by default, since it equals the sandboxed reference on
/// every real program and on 100,000 mutated ones (`tests/pep8_native.rs`, docs/pep8-port.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pep8Engine {
    /// The Rust port (`metrics::pep8`): about 0.04 ms per program, against 1.2 ms for the sandboxed one.
    #[default]
    Native,
    /// pycodestyle 2.14.0 itself, in CPython inside the sandbox: the reference.
    Sandbox,
}

impl Pep8Engine {
    /// pycodestyle's count for each of `codes`, plain or in the reference study's wrapped mode.
    pub async fn counts(self, grader: &Grader, codes: &[&str], wrapped: bool) -> Result<Vec<u32>> {
        match self {
            Pep8Engine::Native => Ok(codes.iter().map(|code| pep8::check(code, wrapped).len() as u32).collect()),
            Pep8Engine::Sandbox => grader.pep8(codes, wrapped).await,
        }
    }
}

/// Every style feature of every program.
pub async fn styles(grader: &Grader, codes: &[&str], engine: Pep8Engine) -> Result<Vec<Style>> {
    let shapes = ast_shapes(grader, codes).await?;
    let plain = engine.counts(grader, codes, false).await?;
    let wrapped = engine.counts(grader, codes, true).await?;
    Ok((0..codes.len())
        .map(|i| Style {
            lines: lines(codes[i]),
            chars: chars(codes[i]),
            ast_depth: shapes[i].depth,
            ast_width: shapes[i].width,
            ast_nodes: shapes[i].nodes,
            pep8: plain[i],
            pep8_wrapped: wrapped[i],
        })
        .collect())
}

/// [`styles`] over many programs on `parallel` threads; see [`in_parallel`].
pub fn styles_parallel(
    runtime: &Handle,
    grader: &Grader,
    codes: &[&str],
    engine: Pep8Engine,
    parallel: usize,
    progress: &dyn Progress,
) -> Result<Vec<Style>> {
    in_parallel(runtime, codes, parallel, progress, async |chunk| styles(grader, chunk, engine).await)
}

/// Run `work` over chunks of `codes` on `parallel` threads, each driving its chunk's sandbox calls through
/// `runtime`; `progress` advances per program. Results are in input order.
pub fn in_parallel<T: Send>(
    runtime: &Handle,
    codes: &[&str],
    parallel: usize,
    progress: &dyn Progress,
    work: impl AsyncFn(&[&str]) -> Result<Vec<T>> + Sync,
) -> Result<Vec<T>> {
    const CHUNK: usize = 256;
    let chunks: Vec<&[&str]> = codes.chunks(CHUNK).collect();
    let found: Vec<Mutex<Option<Result<Vec<T>>>>> = chunks.iter().map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..parallel.clamp(1, chunks.len().max(1)) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(chunk) = chunks.get(index) else { break };
                    let result = runtime.block_on(work(chunk));
                    progress.advance(chunk.len() as u64);
                    *found[index].lock().expect("no thread panics holding it") = Some(result);
                }
            });
        }
    });
    let mut out = Vec::with_capacity(codes.len());
    for slot in found {
        out.extend(slot.into_inner().expect("no thread panicked").expect("every chunk was worked on")?);
    }
    Ok(out)
}
