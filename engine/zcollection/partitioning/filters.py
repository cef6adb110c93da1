"""The partition filter language: a whitelisted subset of Python expressions.

``"year == 2024 and month in (1, 2, 3)"`` compiles to a predicate over partition-key dicts.
The text is parsed with :func:`ast.parse` and turned into a tree of closures; it is never
evaluated as Python. Comparisons are typed: numbers compare with numbers, strings with
strings, booleans with booleans; anything else raises :class:`ExpressionError`.
"""

from __future__ import annotations

import ast
import io
import operator
import re
import tokenize
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

import numpy

from ..errors import ExpressionError

#: Longest accepted filter text, in characters.
MAX_LENGTH = 10_000
#: Deepest accepted nesting of syntax nodes.
MAX_DEPTH = 64

_Eval = Callable[[Mapping[str, Any]], Any]
_Step = Callable[[Any, Mapping[str, Any]], tuple[bool, Any]]

_ORDERING: dict[type[ast.cmpop], tuple[Callable[[Any, Any], Any], str]] = {
    ast.Eq: (operator.eq, "=="),
    ast.NotEq: (operator.ne, "!="),
    ast.Lt: (operator.lt, "<"),
    ast.LtE: (operator.le, "<="),
    ast.Gt: (operator.gt, ">"),
    ast.GtE: (operator.ge, ">="),
}
_CONTAINERS = (ast.Tuple, ast.List, ast.Set)
#: Keywords that can never appear in an expression: usable as key names (``pass == 3``).
_STATEMENT_KEYWORDS = frozenset(
    {
        "as", "assert", "break", "class", "continue", "def", "del", "elif", "except", "finally",
        "from", "global", "import", "nonlocal", "pass", "raise", "return", "try", "while", "with",
    }
)  # fmt: skip
_KEYWORD_PREFIX = "_zc_keyword_"
_KEYWORD_PATTERN = re.compile(r"\b(?:" + "|".join(sorted(_STATEMENT_KEYWORDS)) + r")\b")
_DESCRIPTIONS: dict[type[ast.AST], str] = {
    ast.Call: "function calls",
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambdas",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.BinOp: "arithmetic",
    ast.IfExp: "conditional expressions",
    ast.Dict: "dicts",
    ast.Starred: "starred expressions",
    ast.Slice: "slices",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}


class _Node(NamedTuple):
    """A compiled sub-expression and its static kind (bool, number, str or any)."""

    fn: _Eval
    kind: str
    constant: bool = False


def _always(_keys: Mapping[str, Any]) -> bool:
    return True


def _short(expr: str) -> str:
    text = repr(expr)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    """Return the comparison class of a runtime value."""
    if isinstance(value, bool | numpy.bool_):
        return "bool"
    if isinstance(value, int | float | numpy.integer | numpy.floating):
        return "number"
    if isinstance(value, str):
        return "str"
    raise ExpressionError(f"partition-key values of type {type(value).__name__} are not supported")


def _truth(value: Any, what: str) -> bool:
    if isinstance(value, bool | numpy.bool_):
        return bool(value)
    raise ExpressionError(f"{what} must be a boolean, got {type(value).__name__} {value!r}")


class _Compiler:
    """Walks a whitelist of AST nodes and builds closures."""

    def __init__(self, expr: str) -> None:
        self.expr = expr
        self.names: dict[str, None] = {}

    def error(self, message: str) -> ExpressionError:
        return ExpressionError(f"{message} in filter {_short(self.expr)}")

    def build(self, node: ast.AST, depth: int) -> _Node:
        if depth > MAX_DEPTH:
            raise self.error(f"nesting deeper than {MAX_DEPTH} levels")
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            what = _DESCRIPTIONS.get(type(node), f"{type(node).__name__} expressions")
            raise self.error(f"{what} are not allowed")
        result: _Node = method(node, depth + 1)
        return result

    def boolean(self, node: ast.AST, depth: int, what: str) -> Callable[[Mapping[str, Any]], bool]:
        """Compile ``node`` in a boolean context."""
        compiled = self.build(node, depth)
        if compiled.kind not in ("bool", "any"):
            raise self.error(f"{what} must be a boolean expression, not a {compiled.kind}")
        fn = compiled.fn
        return lambda keys: _truth(fn(keys), what)

    # -- leaves -----------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant, depth: int) -> _Node:
        value = node.value
        if type(value) not in (bool, int, float, str):
            raise self.error(f"the literal {value!r} is not allowed")
        return _Node(lambda _keys: value, _kind(value), constant=True)

    def visit_Name(self, node: ast.Name, depth: int) -> _Node:
        if not isinstance(node.ctx, ast.Load):
            raise self.error("assignments are not allowed")
        name = node.id
        if name.startswith(_KEYWORD_PREFIX) and name[len(_KEYWORD_PREFIX) :] in _STATEMENT_KEYWORDS:
            name = name[len(_KEYWORD_PREFIX) :]
        self.names[name] = None

        def lookup(keys: Mapping[str, Any]) -> Any:
            try:
                return keys[name]
            except KeyError:
                known = ", ".join(keys) or "none"
                raise ExpressionError(
                    f"unknown partition key {name!r} in filter {_short(self.expr)}; known: {known}"
                ) from None

        return _Node(lookup, "any")

    # -- operators --------------------------------------------------------------------------
    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> _Node:
        if isinstance(node.op, ast.Not):
            test = self.boolean(node.operand, depth, "the operand of 'not'")
            return _Node(lambda keys: not test(keys), "bool")
        if not isinstance(node.op, ast.USub | ast.UAdd):
            raise self.error("bitwise inversion is not allowed")
        sign = -1 if isinstance(node.op, ast.USub) else 1
        operand = self.build(node.operand, depth)
        if operand.kind not in ("number", "any"):
            raise self.error(f"a sign applies to numbers, not to a {operand.kind}")
        fn = operand.fn
        if operand.constant:
            folded = sign * fn({})
            return _Node(lambda _keys: folded, "number", constant=True)

        def signed(keys: Mapping[str, Any]) -> Any:
            value = fn(keys)
            if _kind(value) != "number":
                raise self.error(
                    f"a sign applies to numbers, not to {type(value).__name__} {value!r}"
                )
            return sign * value

        return _Node(signed, "number")

    def visit_BoolOp(self, node: ast.BoolOp, depth: int) -> _Node:
        word = "and" if isinstance(node.op, ast.And) else "or"
        tests = tuple(
            self.boolean(value, depth, f"an operand of '{word}'") for value in node.values
        )
        if word == "and":
            return _Node(lambda keys: all(test(keys) for test in tests), "bool")
        return _Node(lambda keys: any(test(keys) for test in tests), "bool")

    def visit_Compare(self, node: ast.Compare, depth: int) -> _Node:
        first = self.value(node.left, depth)
        left_kind = first.kind
        steps: list[_Step] = []
        for index, (op, right) in enumerate(zip(node.ops, node.comparators, strict=True)):
            if isinstance(op, ast.In | ast.NotIn):
                if index + 1 < len(node.ops):
                    raise self.error("a collection literal cannot be compared further")
                steps.append(self.membership(op, right, left_kind, depth))
                continue
            if type(op) not in _ORDERING:
                raise self.error(f"the operator {type(op).__name__} is not allowed")
            compiled = self.value(right, depth)
            if "any" not in (left_kind, compiled.kind) and left_kind != compiled.kind:
                symbol = _ORDERING[type(op)][1]
                raise self.error(f"cannot compare a {left_kind} with a {compiled.kind} ({symbol})")
            steps.append(self.ordering(*_ORDERING[type(op)], compiled.fn))
            left_kind = compiled.kind
        head = first.fn

        def compare(keys: Mapping[str, Any]) -> bool:
            left = head(keys)
            for step in steps:
                ok, left = step(left, keys)
                if not ok:
                    return False
            return True

        return _Node(compare, "bool")

    def value(self, node: ast.AST, depth: int) -> _Node:
        """Compile an operand of a comparison (collections are only allowed after 'in')."""
        if isinstance(node, _CONTAINERS):
            raise self.error("collection literals are only allowed after 'in' / 'not in'")
        return self.build(node, depth)

    def membership(self, op: ast.cmpop, node: ast.AST, left_kind: str, depth: int) -> _Step:
        if not isinstance(node, _CONTAINERS):
            raise self.error("'in' needs a literal tuple, list or set, e.g. cycle in (1, 2)")
        members: list[Any] = []
        kinds: set[str] = set()
        for element in node.elts:
            compiled = self.build(element, depth + 1)
            if not compiled.constant:
                raise self.error("the elements after 'in' must be literals")
            members.append(compiled.fn({}))
            kinds.add(compiled.kind)
        if len(kinds) > 1:
            raise self.error(f"the elements after 'in' mix types: {', '.join(sorted(kinds))}")
        kind = kinds.pop() if kinds else None
        if kind is not None and left_kind not in ("any", kind):
            raise self.error(f"cannot look for a {left_kind} among {kind} values")
        values = frozenset(members)
        negate = isinstance(op, ast.NotIn)

        def step(left: Any, _keys: Mapping[str, Any]) -> tuple[bool, Any]:
            if kind is not None and _kind(left) != kind:
                raise self.error(
                    f"cannot look for {type(left).__name__} {left!r} among {kind} values"
                )
            return (left in values) != negate, None

        return step

    def ordering(self, op: Callable[[Any, Any], Any], symbol: str, right_fn: _Eval) -> _Step:
        """Return the step of one comparison of a (possibly chained) Compare."""

        def step(left: Any, keys: Mapping[str, Any]) -> tuple[bool, Any]:
            right = right_fn(keys)
            if _kind(left) != _kind(right):
                raise self.error(
                    f"cannot compare {type(left).__name__} {left!r} with "
                    f"{type(right).__name__} {right!r} ({symbol})"
                )
            return bool(op(left, right)), right

        return step


def _escape_keywords(expr: str) -> str:
    """Rename statement keywords used as names (``pass``) to identifiers the parser accepts."""
    if not _KEYWORD_PATTERN.search(expr):
        return expr
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(expr).readline))
    except (tokenize.TokenError, SyntaxError, ValueError, RecursionError, MemoryError):
        return expr  # the parser reports the problem
    offsets = [0]
    for line in io.StringIO(expr):
        offsets.append(offsets[-1] + len(line))
    pieces: list[str] = []
    last = 0
    for token in tokens:
        if token.type == tokenize.NAME and token.string in _STATEMENT_KEYWORDS:
            start = offsets[token.start[0] - 1] + token.start[1]
            pieces += [expr[last:start], _KEYWORD_PREFIX, token.string]
            last = start + len(token.string)
    pieces.append(expr[last:])
    return "".join(pieces)


def _parse(expr: str) -> ast.Expression:
    if not isinstance(expr, str):
        raise ExpressionError(f"a filter must be a string, not {type(expr).__name__}")
    if len(expr) > MAX_LENGTH:
        raise ExpressionError(f"filter expression longer than {MAX_LENGTH} characters")
    try:
        return ast.parse(_escape_keywords(expr.strip()), mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"invalid filter syntax {_short(expr)}: {exc.msg}") from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"filter expression too complex: {_short(expr)}") from None
    except ValueError as exc:
        raise ExpressionError(f"invalid filter {_short(expr)}: {exc}") from None


def _compile(expr: str) -> tuple[Callable[[Mapping[str, Any]], bool], tuple[str, ...]]:
    compiler = _Compiler(expr)
    test = compiler.boolean(_parse(expr).body, 1, "the filter")
    return test, tuple(compiler.names)


def _is_empty(expr: str | None) -> bool:
    return expr is None or (isinstance(expr, str) and not expr.strip())


def compile_filter(
    expr: str | None, *, names: Iterable[str] | None = None
) -> Callable[[dict[str, Any]], bool]:
    """Compile a filter expression to a predicate over partition-key dicts.

    ``None`` or an empty string yields a tautology. When ``names`` (the known key names) is
    given, a reference to any other name is rejected here, before any evaluation.

    Raises:
        ExpressionError: On syntax errors, disallowed syntax, over-long or too deeply nested
            input, unknown names (with ``names``), or type errors found at compile time. The
            predicate raises it too, for unknown names (without ``names``) and for values of
            incompatible types.
    """
    if _is_empty(expr):
        return _always
    assert expr is not None
    test, referenced = _compile(expr)
    if names is not None:
        known = tuple(dict.fromkeys((names,) if isinstance(names, str) else names))
        unknown = [name for name in referenced if name not in known]
        if unknown:
            raise ExpressionError(
                f"unknown partition key {unknown[0]!r} in filter {_short(expr)}; "
                f"known: {', '.join(known) or 'none'}"
            )

    def predicate(keys: dict[str, Any]) -> bool:
        if not isinstance(keys, Mapping):
            raise ExpressionError(f"a filter applies to a dict of keys, not {type(keys).__name__}")
        return test(keys)

    return predicate


def referenced_names(expr: str | None) -> frozenset[str]:
    """Return the key names an expression refers to (after validating it).

    Raises:
        ExpressionError: If the expression is invalid (see :func:`compile_filter`).
    """
    if _is_empty(expr):
        return frozenset()
    assert expr is not None
    return frozenset(_compile(expr)[1])
