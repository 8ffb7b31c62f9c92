//! Style features of many programs at once: sizes, AST shape, PEP 8 counts.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};

use super::{AstShape, ast_shape, chars, lines};
use crate::grade::Grader;
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
    for (i, (depth, width, nodes)) in refused.into_iter().zip(grader.ast_shapes(&refused_codes).await?) {
        shapes[i] = Some(AstShape { depth, width, nodes });
    }
    Ok(shapes.into_iter().map(|s| s.expect("every refused program was filled in")).collect())
}

/// Every style feature of every program.
pub async fn styles(grader: &Grader, codes: &[&str]) -> Result<Vec<Style>> {
    let shapes = ast_shapes(grader, codes).await?;
    let plain = grader.pep8(codes, false).await?;
    let wrapped = grader.pep8(codes, true).await?;
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
pub fn styles_parallel(runtime: &Handle, grader: &Grader, codes: &[&str], parallel: usize, progress: &ProgressBar) -> Result<Vec<Style>> {
    in_parallel(runtime, codes, parallel, progress, async |chunk| styles(grader, chunk).await)
}

/// Run `work` over chunks of `codes` on `parallel` threads, each driving its chunk's sandbox calls through
/// `runtime`; `progress` advances per program. Results are in input order.
pub fn in_parallel<T: Send>(
    runtime: &Handle,
    codes: &[&str],
    parallel: usize,
    progress: &ProgressBar,
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
                    progress.inc(chunk.len() as u64);
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
