"""AWS IoT SQL (version 2016-03-23): parse a topic rule's statement and evaluate it.

The subset the platform's rules need, with AWS's semantics:

- ``SELECT`` with ``*``, fields, nested fields (``a.b``, ``a[0]``), ``AS`` aliases,
  literals, arithmetic and the functions ``topic()``, ``topic(n)``, ``clientid()``,
  ``timestamp()`` and ``newuuid()``;
- ``FROM '<topic filter>'`` with the MQTT wildcards ``+`` and ``#``;
- ``WHERE`` with ``= <> != < <= > >=``, ``AND`` / ``OR`` / ``NOT``, parentheses and
  ``IS [NOT] NULL`` / ``IS [NOT] UNDEFINED``.

``WHERE`` is evaluated before ``SELECT``. A missing attribute is *Undefined*; every
operator given Undefined (or operands of the wrong type) yields Undefined, and a
``WHERE`` that is not exactly ``true`` means no match, as in AWS.

A payload that is not JSON can only be forwarded unchanged: ``SELECT *`` (alone) passes
the bytes through, while any reference to a payload field makes the rule not match
(AWS logs such SQL evaluation problems; it does not invoke the error action, which is
reserved for failed actions).

No PyPI parser fits this dialect well enough to be worth the dependency, so this module
is a small tokenizer plus a recursive-descent parser producing a tree of expression
nodes that evaluate themselves against a :class:`MessageContext`.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

SQL_VERSION = "2016-03-23"


class IotSqlError(ValueError):
    """A rule's SQL (or a substitution template) that cannot be parsed."""


class _UndefinedType:
    """AWS IoT SQL's Undefined: a missing attribute or a meaningless operation."""

    _instance: _UndefinedType | None = None

    def __new__(cls) -> _UndefinedType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "Undefined"

    def __bool__(self) -> bool:
        return False


Undefined = _UndefinedType()


class PayloadNotJson(Exception):
    """A payload field was referenced but the payload is not JSON."""


# --- The message being evaluated ---------------------------------------------------


@dataclass
class MessageContext:
    """One inbound message as the SQL sees it: topic, payload bytes, client id, arrival time.

    ``timestamp_ms`` is fixed at arrival so ``timestamp()`` gives the same value in the
    SQL and in every substitution template of the same message.
    """

    topic: str
    payload: bytes
    client_id: str
    timestamp_ms: int
    _segments: list[str] | None = field(default=None, repr=False)

    @cached_property
    def document(self) -> Any:
        """The payload parsed as JSON; raises :class:`PayloadNotJson` if it is not JSON."""
        try:
            return json.loads(self.payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise PayloadNotJson(str(exc)) from None

    @property
    def is_json(self) -> bool:
        """True when the payload parses as JSON."""
        try:
            self.document  # noqa: B018 - parse (and cache) once
        except PayloadNotJson:
            return False
        return True

    def topic_segment(self, n: int) -> Any:
        """The n-th (1-based) level of the topic, or Undefined when there is none."""
        if self._segments is None:
            self._segments = self.topic.split("/")
        return self._segments[n - 1] if 1 <= n <= len(self._segments) else Undefined


# --- Topic filters -----------------------------------------------------------------


def topic_matches(topic_filter: str, topic: str) -> bool:
    """Whether an MQTT topic matches a filter with ``+`` (one level) and ``#`` (the rest)."""
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for i, level in enumerate(filter_levels):
        if level == "#":
            return True
        if i >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[i]:
            return False
    return len(filter_levels) == len(topic_levels)


def _validate_topic_filter(topic_filter: str) -> None:
    if not topic_filter:
        raise IotSqlError("FROM needs a topic filter")
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise IotSqlError(f"'#' must be a whole last level in topic filter {topic_filter!r}")
        if "+" in level and level != "+":
            raise IotSqlError(f"'+' must be a whole level in topic filter {topic_filter!r}")


# --- Tokens ------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<number>\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+(?:[eE][-+]?\d+)?)
  | (?P<string>'(?:[^']|'')*')
  | (?P<qident>"(?:[^"]|"")*"|`[^`]*`)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op><>|!=|<=|>=|=|<|>|\+|-|\*|/|%|\(|\)|,|\.|\[|\])
    """,
    re.VERBOSE,
)

_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AS",
    "AND",
    "OR",
    "NOT",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "UNDEFINED",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # number, string, ident, keyword, op, end
    value: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise IotSqlError(f"unexpected character {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        value = match.group()
        if kind == "ident" and value.upper() in _KEYWORDS:
            tokens.append(_Token("keyword", value.upper(), pos))
        elif kind == "qident":
            # Quoted identifiers let a rule name fields with characters SQL reserves.
            tokens.append(_Token("ident", value[1:-1].replace('""', '"'), pos))
        elif kind == "string":
            tokens.append(_Token("string", value[1:-1].replace("''", "'"), pos))
        elif kind != "ws":
            tokens.append(_Token(kind, value, pos))
        pos = match.end()
    tokens.append(_Token("end", "", pos))
    return tokens


# --- Expression tree ---------------------------------------------------------------


class Expr:
    """A node of the expression tree; ``evaluate`` returns a JSON value or Undefined."""

    def evaluate(self, ctx: MessageContext) -> Any:
        """Evaluate against one message."""
        raise NotImplementedError

    #: Whether evaluating this expression reads the payload.
    reads_payload = False

    def default_name(self) -> str | None:
        """The output key used when the SELECT item has no alias."""
        return None


@dataclass
class Literal(Expr):
    """A string, number, boolean or null literal."""

    value: Any

    def evaluate(self, ctx: MessageContext) -> Any:
        """Return the literal."""
        return self.value


@dataclass
class FieldPath(Expr):
    """A payload field, possibly nested: ``a``, ``a.b``, ``a[0].c``."""

    steps: list[str | int]
    reads_payload = True

    def evaluate(self, ctx: MessageContext) -> Any:
        """Walk the parsed payload; anything missing is Undefined."""
        value = ctx.document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return Undefined
                value = value[step]
            else:
                if not isinstance(value, dict) or step not in value:
                    return Undefined
                value = value[step]
        return value

    def default_name(self) -> str | None:
        """The last named step: ``SELECT a.b`` yields key ``b`` as in AWS."""
        names = [s for s in self.steps if isinstance(s, str)]
        return names[-1] if names else None


def _fn_topic(ctx: MessageContext, args: list[Any]) -> Any:
    if not args:
        return ctx.topic
    n = args[0]
    if isinstance(n, bool) or not isinstance(n, int | float) or n != int(n):
        return Undefined
    return ctx.topic_segment(int(n))


def _fn_clientid(ctx: MessageContext, args: list[Any]) -> Any:
    return ctx.client_id


def _fn_timestamp(ctx: MessageContext, args: list[Any]) -> Any:
    return ctx.timestamp_ms


def _fn_newuuid(ctx: MessageContext, args: list[Any]) -> Any:
    return str(uuid.uuid4())


# name -> (implementation, allowed argument counts)
_FUNCTIONS: dict[str, tuple[Callable[[MessageContext, list[Any]], Any], tuple[int, ...]]] = {
    "topic": (_fn_topic, (0, 1)),
    "clientid": (_fn_clientid, (0,)),
    "timestamp": (_fn_timestamp, (0,)),
    "newuuid": (_fn_newuuid, (0,)),
}


@dataclass
class FunctionCall(Expr):
    """A call of one of the supported functions."""

    name: str
    args: list[Expr]

    def __post_init__(self) -> None:
        self.reads_payload = any(a.reads_payload for a in self.args)

    def evaluate(self, ctx: MessageContext) -> Any:
        """Call the function with evaluated arguments."""
        impl, _ = _FUNCTIONS[self.name]
        return impl(ctx, [a.evaluate(ctx) for a in self.args])

    def default_name(self) -> str | None:
        """AWS names an unaliased function result after the function."""
        return self.name


def _is_number(value: Any) -> bool:
    # Booleans are not numbers in IoT SQL (nor in the reading contract).
    return isinstance(value, int | float) and not isinstance(value, bool)


def _as_number(value: Any) -> Any:
    """A number, or a string that reads as one (AWS converts such strings); else Undefined."""
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return Undefined
        return number if math.isfinite(number) else Undefined
    return Undefined


def _as_bool(value: Any) -> Any:
    """A boolean, or the strings "true"/"false" in any case (as AWS converts); else Undefined."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return Undefined


def _compare(op: str, left: Any, right: Any) -> Any:
    if left is Undefined or right is Undefined:
        return Undefined
    if _is_number(left) or _is_number(right):
        left, right = _as_number(left), _as_number(right)
        if left is Undefined or right is Undefined:
            return Undefined
    elif type(left) is not type(right):
        return Undefined
    if op in ("=", "<>", "!="):
        equal = left == right
        return equal if op == "=" else not equal
    if not (_is_number(left) or isinstance(left, str)):
        return Undefined  # ordering booleans, objects or nulls means nothing
    return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op]


def _arithmetic(op: str, left: Any, right: Any) -> Any:
    left, right = _as_number(left), _as_number(right)
    if left is Undefined or right is Undefined:
        return Undefined
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if right == 0:
        return Undefined
    both_ints = isinstance(left, int) and isinstance(right, int)
    # Int with Int stays Int (truncated), as AWS documents for / and %.
    result = left / right if op == "/" else math.fmod(left, right)
    return int(result) if both_ints else result


@dataclass
class BinaryOp(Expr):
    """A comparison, arithmetic or logical operation of two operands."""

    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        self.reads_payload = self.left.reads_payload or self.right.reads_payload

    def evaluate(self, ctx: MessageContext) -> Any:
        """Apply the operator with AWS's typing rules (wrong types give Undefined)."""
        left = self.left.evaluate(ctx)
        right = self.right.evaluate(ctx)
        if self.op in ("AND", "OR"):
            left, right = _as_bool(left), _as_bool(right)
            if left is Undefined or right is Undefined:
                return Undefined
            return (left and right) if self.op == "AND" else (left or right)
        if self.op in ("=", "<>", "!=", "<", "<=", ">", ">="):
            return _compare(self.op, left, right)
        return _arithmetic(self.op, left, right)


@dataclass
class Not(Expr):
    """Logical negation; NOT of anything but a boolean is Undefined."""

    operand: Expr

    def __post_init__(self) -> None:
        self.reads_payload = self.operand.reads_payload

    def evaluate(self, ctx: MessageContext) -> Any:
        """Negate a boolean."""
        value = _as_bool(self.operand.evaluate(ctx))
        return Undefined if value is Undefined else not value


@dataclass
class Negate(Expr):
    """Unary minus."""

    operand: Expr

    def __post_init__(self) -> None:
        self.reads_payload = self.operand.reads_payload

    def evaluate(self, ctx: MessageContext) -> Any:
        """Negate a number."""
        value = _as_number(self.operand.evaluate(ctx))
        return Undefined if value is Undefined else -value


@dataclass
class IsCheck(Expr):
    """``x IS [NOT] NULL`` or ``x IS [NOT] UNDEFINED``."""

    operand: Expr
    what: str  # NULL or UNDEFINED
    negated: bool

    def __post_init__(self) -> None:
        self.reads_payload = self.operand.reads_payload

    def evaluate(self, ctx: MessageContext) -> Any:
        """Test for null or Undefined; always a boolean."""
        value = self.operand.evaluate(ctx)
        result = value is None if self.what == "NULL" else value is Undefined
        return result != self.negated


# --- Parser ------------------------------------------------------------------------

_COMPARISONS = ("=", "<>", "!=", "<", "<=", ">", ">=")


class _Parser:
    """Recursive descent over the token list; one method per grammar rule."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    # helpers
    @property
    def current(self) -> _Token:
        return self.tokens[self.i]

    def advance(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def at(self, kind: str, value: str | None = None) -> bool:
        token = self.current
        return token.kind == kind and (value is None or token.value == value)

    def accept(self, kind: str, value: str | None = None) -> _Token | None:
        return self.advance() if self.at(kind, value) else None

    def expect(self, kind: str, value: str | None = None) -> _Token:
        if not self.at(kind, value):
            wanted = value or kind
            found = self.current.value or "end of input"
            raise IotSqlError(
                f"expected {wanted} at position {self.current.pos}, found {found!r} "
                f"in {self.text!r}"
            )
        return self.advance()

    # expression grammar, lowest precedence first
    def expression(self) -> Expr:
        return self.or_expr()

    def or_expr(self) -> Expr:
        node = self.and_expr()
        while self.accept("keyword", "OR"):
            node = BinaryOp("OR", node, self.and_expr())
        return node

    def and_expr(self) -> Expr:
        node = self.not_expr()
        while self.accept("keyword", "AND"):
            node = BinaryOp("AND", node, self.not_expr())
        return node

    def not_expr(self) -> Expr:
        if self.accept("keyword", "NOT"):
            return Not(self.not_expr())
        return self.comparison()

    def comparison(self) -> Expr:
        node = self.additive()
        if self.current.kind == "op" and self.current.value in _COMPARISONS:
            op = self.advance().value
            return BinaryOp(op, node, self.additive())
        if self.accept("keyword", "IS"):
            negated = self.accept("keyword", "NOT") is not None
            if self.accept("keyword", "NULL"):
                return IsCheck(node, "NULL", negated)
            self.expect("keyword", "UNDEFINED")
            return IsCheck(node, "UNDEFINED", negated)
        return node

    def additive(self) -> Expr:
        node = self.multiplicative()
        while self.current.kind == "op" and self.current.value in ("+", "-"):
            op = self.advance().value
            node = BinaryOp(op, node, self.multiplicative())
        return node

    def multiplicative(self) -> Expr:
        node = self.unary()
        while self.current.kind == "op" and self.current.value in ("*", "/", "%"):
            op = self.advance().value
            node = BinaryOp(op, node, self.unary())
        return node

    def unary(self) -> Expr:
        if self.accept("op", "-"):
            return Negate(self.unary())
        return self.primary()

    def primary(self) -> Expr:
        token = self.current
        if token.kind == "number":
            self.advance()
            text = token.value
            is_int = text.isdigit()
            return Literal(int(text) if is_int else float(text))
        if token.kind == "string":
            self.advance()
            return Literal(token.value)
        if token.kind == "keyword" and token.value in ("TRUE", "FALSE", "NULL"):
            self.advance()
            return Literal({"TRUE": True, "FALSE": False, "NULL": None}[token.value])
        if self.accept("op", "("):
            node = self.expression()
            self.expect("op", ")")
            return node
        if token.kind == "ident":
            self.advance()
            if self.at("op", "("):
                return self.function_call(token)
            return self.field_path(token.value)
        found = token.value or "end of input"
        raise IotSqlError(
            f"expected a value at position {token.pos}, found {found!r} in {self.text!r}"
        )

    def function_call(self, name_token: _Token) -> Expr:
        name = name_token.value.lower()
        if name not in _FUNCTIONS:
            supported = ", ".join(f"{n}()" for n in _FUNCTIONS)
            raise IotSqlError(
                f"function {name_token.value}() is not supported by the local rules engine "
                f"(supported: {supported})"
            )
        self.expect("op", "(")
        args: list[Expr] = []
        if not self.at("op", ")"):
            args.append(self.expression())
            while self.accept("op", ","):
                args.append(self.expression())
        self.expect("op", ")")
        if len(args) not in _FUNCTIONS[name][1]:
            raise IotSqlError(f"{name}() does not take {len(args)} argument(s)")
        return FunctionCall(name, args)

    def field_path(self, first: str) -> Expr:
        steps: list[str | int] = [first]
        while True:
            if self.accept("op", "."):
                steps.append(self.expect("ident").value)
            elif self.accept("op", "["):
                index = self.expect("number").value
                if not index.isdigit():
                    raise IotSqlError(f"array index must be a whole number, got {index}")
                steps.append(int(index))
                self.expect("op", "]")
            else:
                return FieldPath(steps)

    # statement
    def statement(self) -> RuleQuery:
        self.expect("keyword", "SELECT")
        items = [self.select_item()]
        while self.accept("op", ","):
            items.append(self.select_item())
        self.expect("keyword", "FROM")
        topic_filter = self.expect("string").value
        _validate_topic_filter(topic_filter)
        where = self.expression() if self.accept("keyword", "WHERE") else None
        self.expect("end")
        return RuleQuery(self.text, items, topic_filter, where)

    def select_item(self) -> SelectItem:
        if self.accept("op", "*"):
            return SelectItem(None, None)
        expr = self.expression()
        alias = None
        if self.accept("keyword", "AS"):
            alias = self.expect("ident").value
        return SelectItem(expr, alias)


# --- Statements and templates ------------------------------------------------------


@dataclass
class SelectItem:
    """One item of the SELECT list; ``expr is None`` stands for ``*``."""

    expr: Expr | None
    alias: str | None


@dataclass
class RuleQuery:
    """A parsed ``SELECT ... FROM ... [WHERE ...]`` statement."""

    sql: str
    items: list[SelectItem]
    topic_filter: str
    where: Expr | None

    @property
    def passes_payload_through(self) -> bool:
        """``SELECT *`` alone: the payload is forwarded byte for byte, JSON or not."""
        return len(self.items) == 1 and self.items[0].expr is None

    def matches_topic(self, topic: str) -> bool:
        """Whether the FROM topic filter selects this topic."""
        return topic_matches(self.topic_filter, topic)

    def evaluate(self, ctx: MessageContext) -> bytes | None:
        """The outgoing payload for this message, or None when the rule does not match.

        The topic must already match (see :meth:`matches_topic`). Referencing a field of a
        payload that is not JSON makes the rule not match.
        """
        try:
            if self.where is not None and self.where.evaluate(ctx) is not True:
                return None
            if self.passes_payload_through:
                return ctx.payload
            return json.dumps(self._project(ctx), separators=(",", ":")).encode()
        except PayloadNotJson:
            return None

    def _project(self, ctx: MessageContext) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for position, item in enumerate(self.items, start=1):
            if item.expr is None:
                document = ctx.document
                if isinstance(document, dict):
                    result.update(document)
                continue
            value = item.expr.evaluate(ctx)
            if value is Undefined:
                continue  # AWS leaves Undefined values out of the output
            name = item.alias or item.expr.default_name() or f"_{position}"
            result[name] = value
        return result


def parse_rule_sql(sql: str) -> RuleQuery:
    """Parse a topic rule's SQL statement; raises :class:`IotSqlError` with the position."""
    return _Parser(sql).statement()


def parse_expression(text: str) -> Expr:
    """Parse a single expression (as used inside a ``${...}`` substitution template)."""
    parser = _Parser(text)
    expr = parser.expression()
    parser.expect("end")
    return expr


def _template_text(value: Any) -> str:
    if value is Undefined or value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else repr(value)
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"))


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


@dataclass
class SubstitutionTemplate:
    """An action field such as ``${device_id}`` or ``errors/${topic()}/${newuuid()}``.

    Expressions see only the ORIGINAL message (payload fields and functions), never SELECT
    aliases. Undefined values, and fields of a payload that is not JSON, render as an
    empty string, which is what makes AWS's PutRecord fail for an empty partition key.
    """

    text: str
    parts: list[str | Expr] = field(init=False)

    def __post_init__(self) -> None:
        self.parts = []
        position = 0
        for match in _PLACEHOLDER.finditer(self.text):
            if match.start() > position:
                self.parts.append(self.text[position : match.start()])
            self.parts.append(parse_expression(match.group(1)))
            position = match.end()
        if position < len(self.text):
            self.parts.append(self.text[position:])

    def render(self, ctx: MessageContext) -> str:
        """Fill every placeholder from the message."""
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            try:
                out.append(_template_text(part.evaluate(ctx)))
            except PayloadNotJson:
                out.append("")
        return "".join(out)
