//! Sanity baselines: `copy-last` repeats the previous attempt (the untouched stub when there is none);
//! `reference` always writes the problem's reference solution and submits it.

use anyhow::Result;

use super::{BoxFuture, Generation, Generator, Request};

pub struct CopyLast;

impl Generator for CopyLast {
    fn name(&self) -> &str {
        "copy-last"
    }

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>> {
        let code = request.history.last().map_or_else(|| request.problem.todo.clone(), |a| a.code.clone());
        Box::pin(async move { Ok(Generation { code, ..Generation::default() }) })
    }
}

pub struct Reference;

impl Generator for Reference {
    fn name(&self) -> &str {
        "reference"
    }

    fn generate<'a>(&'a self, request: &'a Request) -> BoxFuture<'a, Result<Generation>> {
        let code = request.problem.solution.clone();
        Box::pin(async move { Ok(Generation { code, submit: true, ..Generation::default() }) })
    }
}
