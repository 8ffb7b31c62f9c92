//! AST depth / width / node count equal CPython's `ast` walk (the machine's python3) on every real program:
//! from rustpython where it parses, from CPython inside the sandbox where rustpython refuses.

use crate::common;

use std::io::Write;
use std::process::{Command, Stdio};

use studentsim::metrics::ast_shape;

const CPYTHON_SHAPES: &str = r#"
import ast, json, sys
def shape(code):
    try:
        tree = ast.parse(code.strip())
    except Exception:
        return [-1, -1, -1]
    per_depth = {}
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        per_depth[depth] = per_depth.get(depth, 0) + 1
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return [max(per_depth), max(per_depth.values()), sum(per_depth.values())]
json.dump([shape(code) for code in json.load(sys.stdin)], sys.stdout)
"#;

fn cpython_shapes(programs: &[String]) -> Vec<[i32; 3]> {
    let mut child = Command::new("python3")
        .args(["-c", CPYTHON_SHAPES])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(serde_json::to_string(programs).unwrap().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).expect("shapes from python3")
}

#[test]
fn worked_examples_match_cpython() {
    let programs: Vec<String> = [
        "x = 1", "def f(x):\n    return x+1", "", "def f(:", "   \n  y = [a for a in b if a > 1 and not c]\n",
        "class A(B, metaclass=M):\n    @dec\n    def m(self, *a, k=1, **kw) -> int:\n        del self.x[1:2], y\n        return lambda q=2: {**d, 'k': -q}\n",
        "try:\n    pass\nexcept (A, B) as e:\n    raise X from e\nelse:\n    x += 1\nfinally:\n    with open(f) as g, h:\n        print(f'{x!r:>{w}} and {y}')\n",
        "import a.b as c\nfrom . import d\nglobal z\nwhile x < y <= 3:\n    x, *y = y\n    assert x, 'msg'\n    yield from g\n",
        "match p:\n    case [1, *rest] | {'k': v, **kw}:\n        pass\n    case Point(x=0, y=_) if t:\n        pass\n    case None:\n        pass\n",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    for (code, expected) in programs.iter().zip(cpython_shapes(&programs)) {
        let ours = ast_shape(code).map_or([-1, -1, -1], |s| [s.depth, s.width, s.nodes]);
        assert_eq!(ours, expected, "{code:?}");
    }
}

#[test]
fn every_real_program_matches_cpython() {
    let Some(programs) = common::real_programs() else { return };
    let expected = cpython_shapes(&programs);
    let mut refused = Vec::new();
    let mut mismatches = Vec::new();
    for (i, (code, want)) in programs.iter().zip(&expected).enumerate() {
        match ast_shape(code) {
            Some(s) if [s.depth, s.width, s.nodes] == *want => {}
            Some(s) => mismatches.push(format!("program {i}: ours {s:?}, CPython {want:?}\n{code}")),
            None if want[0] == -1 => {}
            None => refused.push(i),
        }
    }
    eprintln!("{} programs; rustpython refuses {} that CPython parses", programs.len(), refused.len());
    assert!(mismatches.is_empty(), "{} mismatches; first: {}", mismatches.len(), mismatches[0]);
    // Tab/space mixes CPython accepts are read with their tabs expanded (104 NewCaledonia programs went to the
    // sandbox before); 4 Refactory programs stay refused.
    assert!(refused.len() <= 4, "rustpython refused {} programs", refused.len());

    // The ones rustpython refuses get CPython's own shapes, from inside the sandbox.
    let codes: Vec<&str> = programs.iter().map(String::as_str).collect();
    let shapes = common::block_on(studentsim::metrics::style::ast_shapes(&common::grader(), &codes)).unwrap();
    for i in refused {
        let s = shapes[i];
        assert_eq!([s.depth, s.width, s.nodes], expected[i], "program {i} (CPython 3.14 in the sandbox vs native)");
    }
}
