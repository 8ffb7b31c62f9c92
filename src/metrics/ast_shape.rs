//! AST depth, width and node count, equal to walking CPython's `ast.parse` tree with `ast.iter_child_nodes`.
//!
//! CPython's tree has nodes that rustpython's does not model as nodes: expression contexts (Load, Store, Del),
//! operators (Add, And, Eq, USub, ...) and the `arguments` node of every function and lambda. The walker below
//! lists, for each node, the children CPython would yield. The Module is at depth 0; a parse failure gives -1s.

use rustpython_parser::ast::{self, Expr, Pattern, Stmt};
use rustpython_parser::{Mode, parse};

use super::pep8;

/// Depth of the deepest node, the most nodes at one depth, and the node count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AstShape {
    pub depth: i32,
    pub width: i32,
    pub nodes: i32,
}

impl AstShape {
    pub const UNPARSABLE: AstShape = AstShape { depth: -1, width: -1, nodes: -1 };
}

/// The shape of the stripped `code`, or `None` when rustpython cannot parse it (CPython may still).
pub fn ast_shape(code: &str) -> Option<AstShape> {
    let code = code.trim();
    shape_of(code).or_else(|| shape_of(&tabs_expanded(code)?))
}

/// rustpython refuses any tab after spaces in an indentation; CPython accepts one when reading tabs as 8 columns
/// and as 1 orders the lines' indentations alike (its `TabError` check). When CPython's tokenizer (the port in
/// `pep8`) reads `code` without an error, indentations with their tabs expanded to 8 columns give the same tokens
/// and so the same tree (leading whitespace elsewhere, in a continuation line or a multi-line string, stays
/// whitespace and changes no node). `None` when there is nothing to expand or the tokenizer stops.
fn tabs_expanded(code: &str) -> Option<String> {
    if !code.contains('\t') || code.contains(['\r', '\x0c']) {
        return None;
    }
    let lines: Vec<&str> = code.split_inclusive('\n').collect();
    if pep8::tokenize(&lines).1.is_some() {
        return None;
    }
    let expanded = lines.iter().map(|line| {
        let rest = line.trim_start_matches([' ', '\t']);
        format!("{}{rest}", " ".repeat(pep8::expand_indent(&line[..line.len() - rest.len()])))
    });
    Some(expanded.collect())
}

fn shape_of(code: &str) -> Option<AstShape> {
    let module = match parse(code, Mode::Module, "<code>").ok()? {
        ast::Mod::Module(m) => m,
        _ => return None,
    };
    let mut walker = Walker { per_depth: vec![1] };
    for stmt in &module.body {
        walker.stmt(stmt, 1);
    }
    let per_depth = walker.per_depth;
    Some(AstShape {
        depth: per_depth.len() as i32 - 1,
        width: per_depth.iter().copied().max().unwrap_or(1) as i32,
        nodes: per_depth.iter().sum::<usize>() as i32,
    })
}

/// Counts nodes per depth.
struct Walker {
    per_depth: Vec<usize>,
}

impl Walker {
    /// A node with no children of its own (a context, an operator, an alias, a childless statement).
    fn leaf(&mut self, depth: usize) {
        if self.per_depth.len() <= depth {
            self.per_depth.resize(depth + 1, 0);
        }
        self.per_depth[depth] += 1;
    }

    fn exprs<'a>(&mut self, exprs: impl IntoIterator<Item = &'a Expr>, depth: usize) {
        for e in exprs {
            self.expr(e, depth);
        }
    }

    fn stmts(&mut self, stmts: &[Stmt], depth: usize) {
        for s in stmts {
            self.stmt(s, depth);
        }
    }

    fn stmt(&mut self, stmt: &Stmt, d: usize) {
        self.leaf(d);
        let c = d + 1;
        match stmt {
            Stmt::FunctionDef(ast::StmtFunctionDef { args, body, decorator_list, returns, .. })
            | Stmt::AsyncFunctionDef(ast::StmtAsyncFunctionDef { args, body, decorator_list, returns, .. }) => {
                self.arguments(args, c);
                self.stmts(body, c);
                self.exprs(decorator_list, c);
                self.exprs(returns.as_deref(), c);
            }
            Stmt::ClassDef(s) => {
                self.exprs(&s.bases, c);
                for k in &s.keywords {
                    self.keyword(k, c);
                }
                self.stmts(&s.body, c);
                self.exprs(&s.decorator_list, c);
            }
            Stmt::Return(s) => self.exprs(s.value.as_deref(), c),
            Stmt::Delete(s) => self.exprs(&s.targets, c),
            Stmt::Assign(s) => {
                self.exprs(&s.targets, c);
                self.expr(&s.value, c);
            }
            Stmt::TypeAlias(s) => {
                self.expr(&s.name, c);
                self.expr(&s.value, c);
            }
            Stmt::AugAssign(s) => {
                self.expr(&s.target, c);
                self.leaf(c); // the operator
                self.expr(&s.value, c);
            }
            Stmt::AnnAssign(s) => {
                self.expr(&s.target, c);
                self.expr(&s.annotation, c);
                self.exprs(s.value.as_deref(), c);
            }
            Stmt::For(ast::StmtFor { target, iter, body, orelse, .. })
            | Stmt::AsyncFor(ast::StmtAsyncFor { target, iter, body, orelse, .. }) => {
                self.expr(target, c);
                self.expr(iter, c);
                self.stmts(body, c);
                self.stmts(orelse, c);
            }
            Stmt::While(ast::StmtWhile { test, body, orelse, .. })
            | Stmt::If(ast::StmtIf { test, body, orelse, .. }) => {
                self.expr(test, c);
                self.stmts(body, c);
                self.stmts(orelse, c);
            }
            Stmt::With(ast::StmtWith { items, body, .. }) | Stmt::AsyncWith(ast::StmtAsyncWith { items, body, .. }) => {
                for item in items {
                    self.leaf(c);
                    self.expr(&item.context_expr, c + 1);
                    self.exprs(item.optional_vars.as_deref(), c + 1);
                }
                self.stmts(body, c);
            }
            Stmt::Match(s) => {
                self.expr(&s.subject, c);
                for case in &s.cases {
                    self.leaf(c);
                    self.pattern(&case.pattern, c + 1);
                    self.exprs(case.guard.as_deref(), c + 1);
                    self.stmts(&case.body, c + 1);
                }
            }
            Stmt::Raise(s) => {
                self.exprs(s.exc.as_deref(), c);
                self.exprs(s.cause.as_deref(), c);
            }
            Stmt::Try(ast::StmtTry { body, handlers, orelse, finalbody, .. })
            | Stmt::TryStar(ast::StmtTryStar { body, handlers, orelse, finalbody, .. }) => {
                self.stmts(body, c);
                for ast::ExceptHandler::ExceptHandler(h) in handlers {
                    self.leaf(c);
                    self.exprs(h.type_.as_deref(), c + 1);
                    self.stmts(&h.body, c + 1);
                }
                self.stmts(orelse, c);
                self.stmts(finalbody, c);
            }
            Stmt::Assert(s) => {
                self.expr(&s.test, c);
                self.exprs(s.msg.as_deref(), c);
            }
            Stmt::Import(ast::StmtImport { names, .. }) | Stmt::ImportFrom(ast::StmtImportFrom { names, .. }) => {
                for _ in names {
                    self.leaf(c); // alias
                }
            }
            Stmt::Expr(s) => self.expr(&s.value, c),
            Stmt::Global(_) | Stmt::Nonlocal(_) | Stmt::Pass(_) | Stmt::Break(_) | Stmt::Continue(_) => {}
        }
    }

    /// CPython's `arguments` node: arg nodes (with their annotations), then defaults and keyword defaults.
    fn arguments(&mut self, args: &ast::Arguments, d: usize) {
        self.leaf(d);
        let c = d + 1;
        for a in args.posonlyargs.iter().chain(&args.args).chain(&args.kwonlyargs) {
            self.arg(&a.def, c);
            self.exprs(a.default.as_deref(), c);
        }
        for a in args.vararg.iter().chain(&args.kwarg) {
            self.arg(a, c);
        }
    }

    fn arg(&mut self, arg: &ast::Arg, d: usize) {
        self.leaf(d);
        self.exprs(arg.annotation.as_deref(), d + 1);
    }

    fn keyword(&mut self, keyword: &ast::Keyword, d: usize) {
        self.leaf(d);
        self.expr(&keyword.value, d + 1);
    }

    fn comprehensions(&mut self, generators: &[ast::Comprehension], d: usize) {
        for g in generators {
            self.leaf(d);
            self.expr(&g.target, d + 1);
            self.expr(&g.iter, d + 1);
            self.exprs(&g.ifs, d + 1);
        }
    }

    fn expr(&mut self, expr: &Expr, d: usize) {
        self.leaf(d);
        let c = d + 1;
        match expr {
            Expr::BoolOp(e) => {
                self.leaf(c);
                self.exprs(&e.values, c);
            }
            Expr::NamedExpr(e) => {
                self.expr(&e.target, c);
                self.expr(&e.value, c);
            }
            Expr::BinOp(e) => {
                self.expr(&e.left, c);
                self.leaf(c);
                self.expr(&e.right, c);
            }
            Expr::UnaryOp(e) => {
                self.leaf(c);
                self.expr(&e.operand, c);
            }
            Expr::Lambda(e) => {
                self.arguments(&e.args, c);
                self.expr(&e.body, c);
            }
            Expr::IfExp(e) => {
                self.expr(&e.test, c);
                self.expr(&e.body, c);
                self.expr(&e.orelse, c);
            }
            Expr::Dict(e) => {
                self.exprs(e.keys.iter().flatten(), c);
                self.exprs(&e.values, c);
            }
            Expr::Set(e) => self.exprs(&e.elts, c),
            Expr::ListComp(ast::ExprListComp { elt, generators, .. })
            | Expr::SetComp(ast::ExprSetComp { elt, generators, .. })
            | Expr::GeneratorExp(ast::ExprGeneratorExp { elt, generators, .. }) => {
                self.expr(elt, c);
                self.comprehensions(generators, c);
            }
            Expr::DictComp(e) => {
                self.expr(&e.key, c);
                self.expr(&e.value, c);
                self.comprehensions(&e.generators, c);
            }
            Expr::Await(e) => self.expr(&e.value, c),
            Expr::Yield(e) => self.exprs(e.value.as_deref(), c),
            Expr::YieldFrom(e) => self.expr(&e.value, c),
            Expr::Compare(e) => {
                self.expr(&e.left, c);
                for _ in &e.ops {
                    self.leaf(c);
                }
                self.exprs(&e.comparators, c);
            }
            Expr::Call(e) => {
                self.expr(&e.func, c);
                self.exprs(&e.args, c);
                for k in &e.keywords {
                    self.keyword(k, c);
                }
            }
            Expr::FormattedValue(e) => {
                self.expr(&e.value, c);
                self.exprs(e.format_spec.as_deref(), c);
            }
            Expr::JoinedStr(e) => self.exprs(&e.values, c),
            Expr::Constant(_) => {}
            Expr::Attribute(e) => {
                self.expr(&e.value, c);
                self.leaf(c); // ctx
            }
            Expr::Subscript(e) => {
                self.expr(&e.value, c);
                self.expr(&e.slice, c);
                self.leaf(c);
            }
            Expr::Starred(e) => {
                self.expr(&e.value, c);
                self.leaf(c);
            }
            Expr::Name(_) => self.leaf(c),
            Expr::List(ast::ExprList { elts, .. }) | Expr::Tuple(ast::ExprTuple { elts, .. }) => {
                self.exprs(elts, c);
                self.leaf(c);
            }
            Expr::Slice(e) => {
                self.exprs(e.lower.as_deref(), c);
                self.exprs(e.upper.as_deref(), c);
                self.exprs(e.step.as_deref(), c);
            }
        }
    }

    fn pattern(&mut self, pattern: &Pattern, d: usize) {
        self.leaf(d);
        let c = d + 1;
        match pattern {
            Pattern::MatchValue(p) => self.expr(&p.value, c),
            Pattern::MatchSingleton(_) | Pattern::MatchStar(_) => {}
            Pattern::MatchSequence(p) => p.patterns.iter().for_each(|p| self.pattern(p, c)),
            Pattern::MatchMapping(p) => {
                self.exprs(&p.keys, c);
                p.patterns.iter().for_each(|p| self.pattern(p, c));
            }
            Pattern::MatchClass(p) => {
                self.expr(&p.cls, c);
                p.patterns.iter().chain(&p.kwd_patterns).for_each(|p| self.pattern(p, c));
            }
            Pattern::MatchAs(p) => {
                if let Some(inner) = &p.pattern {
                    self.pattern(inner, c);
                }
            }
            Pattern::MatchOr(p) => p.patterns.iter().for_each(|p| self.pattern(p, c)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(code: &str) -> (i32, i32, i32) {
        let s = ast_shape(code).expect("parses");
        (s.depth, s.width, s.nodes)
    }

    #[test]
    fn worked_examples_from_the_reference() {
        assert_eq!(shape("x = 1"), (3, 2, 5));
        assert_eq!(shape("def f(x):\n    return x+1"), (5, 3, 10));
        assert_eq!(shape(""), (0, 1, 1));
        assert_eq!(ast_shape("def f(:\n"), None);
    }
}
