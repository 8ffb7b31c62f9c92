"""studentsim's grading harness: CPython inside a WebAssembly component.

componentize-py runs this module's top level once, at build time, and snapshots the interpreter. So:

* the imports below are the only modules a submission can ever import (nothing else is in the component);
* the host makes a fresh instance of that snapshot for every submission, so nothing leaks between them.

The harness only *observes*: it never decides pass or fail. The host holds the expected outputs and checks
every example itself, so a submission that tampers with this module can at most change what is observed.
Printed output is not collected here: every write goes straight through WASI to the host, which captures it and
enforces the output cap where no submission can reach it.
"""

import ast
import builtins
import doctest
import gc
import io
import marshal
import os
import sys
import tokenize
import traceback

# Standard-library modules novices use, baked into the snapshot. Keep in sync with docs/reference.md ("Isolation, time, tampering and imports").
import abc  # noqa: F401
import array  # noqa: F401
import bisect  # noqa: F401
import calendar  # noqa: F401
import cmath  # noqa: F401
import collections  # noqa: F401
import collections.abc  # noqa: F401
import copy  # noqa: F401
import dataclasses  # noqa: F401
import datetime  # noqa: F401
import decimal  # noqa: F401
import enum  # noqa: F401
import fractions  # noqa: F401
import functools  # noqa: F401
import heapq  # noqa: F401
import itertools  # noqa: F401
import json  # noqa: F401
import keyword  # noqa: F401
import math  # noqa: F401
import numbers  # noqa: F401
import operator  # noqa: F401
import pprint  # noqa: F401
import random  # noqa: F401
import re  # noqa: F401
import statistics  # noqa: F401
import string  # noqa: F401
import textwrap  # noqa: F401
import time  # noqa: F401
import typing  # noqa: F401
import unicodedata  # noqa: F401

import pycodestyle

import wit_world
from componentize_py_types import Err


def _build():
    """Return the exports class, with every name the exports use bound now.

    A submission runs in this interpreter and may rebind module globals, builtins or `sys` attributes; the
    grading path only uses the closure variables below, taken before any submission exists.
    """
    _compile, _exec, _type, _issubclass, _str, _next, _enumerate, _len, _repr = (
        compile, exec, type, issubclass, str, next, enumerate, len, repr)
    _BaseException, _SyntaxError = BaseException, SyntaxError
    _sys, _StringIO = sys, io.StringIO
    _format_exception_only, _print_exception = traceback.format_exception_only, traceback.print_exception
    _report_text, _Ending = wit_world.report_text, wit_world.Ending
    _RETURNED, _RAISED = _Ending.RETURNED, _Ending.RAISED
    _Example, _Group = wit_world.Example, wit_world.Group
    _parse, _docstring = ast.parse, ast.get_docstring
    _ClassDef, _FunctionDef, _AsyncFunctionDef = ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef
    _parser = doctest.DocTestParser()
    _recursion_limit = sys.getrecursionlimit()
    _builtins_dict = builtins.__dict__
    _builtins_snapshot = dict(_builtins_dict)
    _setrecursionlimit, _settrace, _setprofile = sys.setrecursionlimit, sys.settrace, sys.setprofile
    _stdin = sys.stdin
    _harness_file = __file__
    _os_write, _memoryview = os.write, memoryview
    _dumps, _loads = marshal.dumps, marshal.loads

    state = {"module": None, "groups": {}}

    def write_all(fd, text):
        # Lone surrogates pass as the bytes they stand for: the host reads them as invalid UTF-8, so an example
        # that prints one fails its comparison (as under doctest) instead of breaking the call.
        view = _memoryview(text.encode("utf-8", "surrogatepass"))
        while view:
            view = view[_os_write(fd, view):]

    class Writer:
        """sys.stdout during a call: each write goes to the host at once (standard output, fd 1)."""

        __slots__ = ()
        encoding = "utf-8"
        errors = "surrogatepass"

        def write(self, s):
            if _type(s) is not _str:
                raise TypeError(f"write() argument must be str, not {_type(s).__name__}")
            write_all(1, s)
            return _len(s)

        def flush(self):
            pass

        def isatty(self):
            return False

        def writable(self):
            return True

    class Sink(Writer):
        """sys.stderr during a call: not part of doctest output, so dropped."""

        __slots__ = ()

        def write(self, s):
            if _type(s) is not _str:
                raise TypeError(f"write() argument must be str, not {_type(s).__name__}")
            return _len(s)

    _stdout, _stderr = Writer(), Sink()

    # The most characters of an exception's message or traceback sent to the host. The host keeps at most 32 KiB of
    # each text whatever it is sent (this cut is a courtesy, not a limit: a submission can reach it).
    EXCEPTION_TEXT = 8192

    def clean(text):
        """`text` cut to EXCEPTION_TEXT characters, lone surrogates escaped (a WIT string cannot hold them)."""
        return text[:EXCEPTION_TEXT].encode("utf-8", "backslashreplace").decode("utf-8")

    def report(type_name, message, traceback):
        """An exception's texts to the host, in the slots the WIT's `ending` names."""
        _report_text(0, clean(type_name))
        _report_text(1, clean(message))
        _report_text(2, clean(traceback))

    def describe(exc):
        """Report `exc` to the host."""
        kind = _type(exc)
        lines = _format_exception_only(kind, exc)
        if _issubclass(kind, _SyntaxError):
            # As doctest does: compare a SyntaxError by its message line, not its carets.
            prefixes = (f"{kind.__qualname__}:", f"{kind.__module__}.{kind.__qualname__}:")
            start = _next((i for i, line in _enumerate(lines) if line.startswith(prefixes)), 0)
            lines = lines[start:]
        buf = _StringIO()
        # Skip the harness's own frames so the traceback shows only the student's code.
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == _harness_file:
            tb = tb.tb_next
        _print_exception(kind, exc, tb, file=buf)
        report(kind.__name__, "".join(lines), buf.getvalue())

    def reset_interpreter():
        _builtins_dict.clear()
        _builtins_dict.update(_builtins_snapshot)
        _settrace(None)
        _setprofile(None)
        _setrecursionlimit(_recursion_limit)
        _sys.stdin = _stdin

    def display(value):
        """sys.displayhook: the value's repr to the output, and on its own to fd 2 (for value-only comparison)."""
        if value is None:
            return
        _builtins_dict["_"] = None
        text = _repr(value) + "\n"
        write_all(1, text)
        write_all(2, text)
        _builtins_dict["_"] = value

    def observe(thunk):
        reset_interpreter()
        _sys.stdout, _sys.stderr = _stdout, _stderr
        _sys.displayhook = display
        ending = _RETURNED
        try:
            thunk()
        except _BaseException as exc:
            ending = _RAISED
            try:
                describe(exc)
            except _BaseException:
                report(_type(exc).__name__, "", "")
        finally:
            _sys.stdout, _sys.stderr = _sys.__stdout__, _sys.__stderr__
        return ending

    def parse_examples(source):
        try:
            tree = _parse(source)
        except _SyntaxError as exc:
            raise Err(f"line {exc.lineno}: {exc.msg}")
        groups = []

        def visit(node, qualname):
            doc = _docstring(node, clean=False)
            if doc:
                first_line = node.body[0].lineno  # the docstring statement
                try:
                    found = _parser.get_examples(doc, qualname)
                except ValueError as exc:
                    raise Err(f"{qualname}: {exc}")
                examples = [
                    _Example(source=ex.source, want=ex.want, exc_msg=ex.exc_msg, lineno=first_line + ex.lineno)
                    for ex in found
                ]
                if examples:
                    groups.append(_Group(name=qualname, examples=examples))
            for child in node.body:
                if isinstance(child, (_ClassDef, _FunctionDef, _AsyncFunctionDef)):
                    name = child.name if qualname == "<module>" else f"{qualname}.{child.name}"
                    visit(child, name)

        visit(tree, "<module>")
        return groups

    def load(fixed, submission):
        state["groups"] = {}
        state["module"] = None
        try:
            fixed_code = _compile(fixed, "<fixed>", "exec", dont_inherit=True)
            code = _compile(submission, "<submission>", "exec", dont_inherit=True)
        except _BaseException as exc:  # SyntaxError and subclasses, ValueError (NUL bytes), RecursionError
            describe(exc)
            raise Err(None)
        module = {"__name__": "submission", "__builtins__": builtins}
        state["module"] = module

        def run():
            _exec(fixed_code, module)
            _exec(code, module)

        return observe(run)

    def compile_example(group, source):
        return _compile(source, f"<doctest {group}>", "single", dont_inherit=True)

    def compile_examples(groups):
        compiled = []
        for group, sources in _enumerate(groups):
            codes = []
            for source in sources:
                try:
                    codes.append(_dumps(compile_example(group, source)))
                except _BaseException:  # run_example compiles it again and reports the error as the example's
                    codes.append(None)
            compiled.append(codes)
        return compiled

    def run_example(group, source, compiled):
        module = state["module"]
        if module is None:
            report("RuntimeError", "RuntimeError: nothing loaded\n", "")
            return _RAISED
        globs = state["groups"].get(group)
        if globs is None:
            globs = state["groups"][group] = module.copy()  # doctest gives each docstring its own copy

        def run():
            _exec(compile_example(group, source) if compiled is None else _loads(compiled), globs)

        return observe(run)

    style = pycodestyle.StyleGuide(quiet=True)  # default options, no config files read
    _Checker, _TokenError, _generate_tokens = pycodestyle.Checker, tokenize.TokenError, tokenize.generate_tokens
    _StyleProblem, _PyToken = wit_world.StyleProblem, wit_world.PyToken
    _TokenizeError, _TokenStream = wit_world.TokenizeError, wit_world.TokenStream
    _AstShape = wit_world.AstShape

    class ListingReport(pycodestyle.BaseReport):
        """Lists what pycodestyle counts for a file (the codes its default options do not ignore)."""

        def init_file(self, *args, **kwargs):
            self.found = []
            return super().init_file(*args, **kwargs)

        def error(self, line_number, offset, text, check):
            code = super().error(line_number, offset, text, check)
            if code:
                self.found.append(_StyleProblem(line=line_number, column=offset, code=code))
            return code

    def pep8_lines(code, wrapped):
        if wrapped:
            return ["def _tmp_func():"] + ["    " + line.rstrip() for line in code.strip().split("\n")]
        return _StringIO(code, newline=None).readlines()  # as pycodestyle reads a file: universal newlines

    def pep8(files, wrapped):
        report = ListingReport(style.options)
        listed = []
        for code in files:
            checker = _Checker(lines=pep8_lines(code, wrapped), options=style.options, report=report)
            try:
                checker.check_all()
            except Exception:  # pycodestyle's own bugs (an IndexError on f"\{x}"): what it found until then
                pass
            found = report.found
            if wrapped:
                w292 = [i for i, problem in _enumerate(found) if problem.code == "W292"]
                if w292:
                    del found[w292[0]]
            listed.append(found)
        return listed

    def tokens(files, wrapped):
        streams = []
        for code in files:
            lines = iter(pep8_lines(code, wrapped))
            found, error = [], None
            try:
                for t in _generate_tokens(lambda: _next(lines, "")):
                    found.append(_PyToken(kind=t.type, text=t.string, start_line=t.start[0], start_column=t.start[1],
                                          end_line=t.end[0], end_column=t.end[1], line=t.line))
            except (_SyntaxError, _TokenError) as exc:
                # Where pycodestyle's report_invalid_syntax puts its E901.
                offset = exc.args[1] if _len(exc.args) > 1 else (1, 0)
                if _len(offset) > 2:
                    offset = offset[1:3]
                error = _TokenizeError(type_name=_type(exc).__name__, message=_str(exc.args[0]),
                                       line=offset[0], column=offset[1] or 0)
            except _BaseException as exc:
                error = _TokenizeError(type_name=_type(exc).__name__, message=_str(exc), line=0, column=0)
            streams.append(_TokenStream(tokens=found, error=error))
        return streams

    def ast_shapes(files):
        shapes = []
        for code in files:
            try:
                tree = _parse(code.strip())
            except _BaseException:  # SyntaxError, ValueError (NUL bytes), RecursionError, MemoryError
                shapes.append(None)
                continue
            per_depth = {}
            stack = [(tree, 0)]
            while stack:
                node, depth = stack.pop()
                per_depth[depth] = per_depth.get(depth, 0) + 1
                stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
            shapes.append(_AstShape(depth=max(per_depth), width=max(per_depth.values()), nodes=sum(per_depth.values())))
        return shapes

    class WitWorld:
        """The exports. No base class and no instance dict: this class's own dict is the only place where a
        submission could redirect them, and `tampered` checks exactly that after every call that ran one."""

        __slots__ = ()

        def parse_examples(self, source):
            return parse_examples(source)

        def load(self, fixed, submission):
            return guarded(self, load(fixed, submission))

        def compile_examples(self, groups):
            return compile_examples(groups)

        def run_example(self, group, source, compiled):
            return guarded(self, run_example(group, source, compiled))

        def pep8(self, files, wrapped):
            return pep8(files, wrapped)

        def tokenize(self, files, wrapped):
            return tokens(files, wrapped)

        def ast_shapes(self, files):
            return ast_shapes(files)

    # Tuples, so a submission that reaches them cannot empty them.
    originals = tuple((cls, tuple(cls.__dict__.items())) for cls in (WitWorld, _Ending))
    endings = ((_RETURNED, _RETURNED._value_), (_RAISED, _RAISED._value_))
    missing = object()
    _exit = os._exit

    def tampered(instance):
        if _type(instance) is not WitWorld:
            return True
        for member, value in endings:
            if member._value_ is not value:
                return True
        for cls, original in originals:
            current = cls.__dict__
            if _len(current) != _len(original):
                return True
            for name, value in original:
                if current.get(name, missing) is not value:
                    return True
        return False

    def guarded(instance, result):
        # A submission that redirected the exports or the result enum could forge later records: end the
        # instance instead (the host labels it runtime, reason `exit`). WASI exit statuses are only 0 or 1.
        if tampered(instance):
            _exit(1)
        return result

    return WitWorld


# Modules that the imports above pulled in but that no submission needs; in WASI they could do little
# (no network, no processes, no threads), and a clear ImportError beats a half-working module.
BLOCKED_MODULES = frozenset({
    "_asyncio", "_pyrepl", "_signal", "_socket", "_thread", "asyncio", "bdb", "cmd", "code", "codeop",
    "concurrent", "ctypes", "multiprocessing", "pdb", "rlcompleter", "select", "selectors", "shutil", "signal",
    "socket", "subprocess", "tempfile", "threading",
})


class _BlockedImporter:
    """First on sys.meta_path: refuses the blocked modules, which are also gone from sys.modules."""

    @staticmethod
    def find_spec(name, path=None, target=None, _blocked=BLOCKED_MODULES):
        if name.partition(".")[0] in _blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (not available in the sandbox)", name=name)
        return None


for _name in [m for m in sys.modules if m.partition(".")[0] in BLOCKED_MODULES]:
    del sys.modules[_name]
sys.meta_path.insert(0, _BlockedImporter)

WitWorld = _build()
del _build, _name

# What the snapshot holds lives as long as the instance: frozen, so a submission's garbage collections never walk
# it. Walking it wrote to pages all over the heap, which the host then had to copy back after every grade.
gc.collect()
gc.freeze()
