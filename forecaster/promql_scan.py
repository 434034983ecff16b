"""A small PromQL scanner: tokens, vector selectors and range selectors with their function.

It is not a full parser. It finds what peakcast checks and rewrites in a query: the vector
selectors (for staleness probes), every ``[range]`` and ``[range:resolution]`` subquery with
the function it is passed to, and counter functions applied to sums. A query the scanner
accepts may still be rejected by the server, which reports its own parse errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

AGGREGATIONS = frozenset(
    {
        "sum",
        "avg",
        "min",
        "max",
        "count",
        "group",
        "stddev",
        "stdvar",
        "count_values",
        "topk",
        "bottomk",
        "quantile",
        "limitk",
        "limit_ratio",
    }
)
# Functions that read a counter and handle its resets; they need at least two samples in
# their range.
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
# Clause keywords followed by a parenthesised list of label names, not by an expression.
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
OPERATOR_KEYWORDS = frozenset({"and", "or", "unless", "bool", "atan2"})
MODIFIER_KEYWORDS = frozenset({"offset"})
LITERAL_IDENTIFIERS = frozenset({"inf", "nan"})
ARITHMETIC = frozenset({"+", "-", "*", "/", "%", "^"})

DURATION_UNITS_SECONDS = {
    "ms": 0.001,
    "s": 1,
    "m": 60,
    "h": 3600,
    "d": 86_400,
    "w": 7 * 86_400,
    "y": 365 * 86_400,
}

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
    |(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<duration>(?:\d+(?:ms|s|m|h|d|w|y))+)(?![a-zA-Z0-9_.])
    |(?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<ident>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<op>==|!=|<=|>=|=~|!~|[-+*/%^<>=@])
    |(?P<punct>[(){}\[\],:])
    """,
    re.VERBOSE,
)
_DURATION_PART = re.compile(r"(\d+)(ms|s|m|h|d|w|y)")
_RECORDING_RULE_AGGREGATE = re.compile(r"(?:^|_)(?:sum|avg|count|min|max)(?:_|$)")


class PromQLSyntaxError(ValueError):
    """The scanner could not read the query; ``position`` is a character offset."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(f"{message} at character {position}")


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class RangeSelector:
    """A ``[range]`` or ``[range:resolution]`` in the query.

    ``function`` is the function whose argument the range vector is, or None at top level.
    ``start`` and ``end`` locate the range duration in the query text.
    """

    seconds: float
    function: str | None
    is_subquery: bool
    start: int
    end: int


@dataclass(frozen=True)
class CounterOfAggregate:
    """A counter function applied to an aggregate, such as ``rate(sum(x)[5m:])``."""

    function: str
    reason: str


@dataclass
class QueryScan:
    """Selectors, ranges and counter functions applied to aggregates in one query."""

    selectors: list[str] = field(default_factory=list)
    ranges: list[RangeSelector] = field(default_factory=list)
    counters_of_aggregates: list[CounterOfAggregate] = field(default_factory=list)


@dataclass
class _Frame:
    """One open parenthesis: the function or aggregation it calls, None for grouping."""

    function: str | None
    contains_aggregation: bool = False
    contains_arithmetic: bool = False


def parse_duration(text: str) -> float:
    """Return the seconds of a PromQL duration such as ``5m`` or ``1h30m``.

    Raises ValueError for anything else.
    """
    position = 0
    seconds = 0.0
    for part in _DURATION_PART.finditer(text):
        if part.start() != position:
            break
        seconds += int(part.group(1)) * DURATION_UNITS_SECONDS[part.group(2)]
        position = part.end()
    if position != len(text) or not text:
        raise ValueError(f"invalid PromQL duration {text!r}; expected e.g. 30s, 5m or 1h30m")
    return seconds


def format_duration(seconds: float) -> str:
    """Format whole seconds as the shortest exact PromQL duration, e.g. 300 -> ``5m``."""
    whole = int(seconds)
    if whole != seconds or whole <= 0:
        raise ValueError(f"a PromQL range needs a positive whole number of seconds, got {seconds}")
    parts = []
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60), ("s", 1)):
        count, whole = divmod(whole, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def tokenize(query: str) -> list[Token]:
    """Split ``query`` into tokens, dropping white space and comments."""
    tokens: list[Token] = []
    position = 0
    bracket_depth = 0
    while position < len(query):
        # Inside [...] a colon separates range and resolution; elsewhere it may start a
        # recording-rule name such as job:requests:rate5m.
        if bracket_depth and query[position] == ":":
            tokens.append(Token("punct", ":", position, position + 1))
            position += 1
            continue
        match = _TOKEN.match(query, position)
        if match is None:
            raise PromQLSyntaxError(f"unexpected character {query[position]!r}", position)
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), match.start(), match.end()))
        if match.group() == "[":
            bracket_depth += 1
        elif match.group() == "]":
            bracket_depth = max(0, bracket_depth - 1)
        position = match.end()
    return tokens


def scan(query: str) -> QueryScan:
    """Scan ``query`` for selectors, ranges and counter functions applied to aggregates.

    Raises PromQLSyntaxError for unbalanced brackets or an unreadable character.
    """
    return _Scanner(query, tokenize(query)).run()


class _Scanner:
    def __init__(self, query: str, tokens: list[Token]) -> None:
        self.query = query
        self.tokens = tokens
        self.stack: list[_Frame] = []
        self.pending_function: str | None = None
        self.result = QueryScan()

    def run(self) -> QueryScan:
        index = 0
        while index < len(self.tokens):
            index = self._step(index)
        if self.stack:
            raise PromQLSyntaxError("unclosed '('", len(self.query))
        return self.result

    def _step(self, index: int) -> int:
        token = self.tokens[index]
        if token.kind == "ident":
            return self._identifier(index)
        if token.text == "{":
            return self._selector(index, index)
        if token.text == "(":
            self._open(self.pending_function)
            self.pending_function = None
            return index + 1
        if token.text == ")":
            if not self.stack:
                raise PromQLSyntaxError("unmatched ')'", token.start)
            self.stack.pop()
            return index + 1
        if token.text == "[":
            return self._range(index)
        if token.text in ("]", "}"):
            raise PromQLSyntaxError(f"unmatched {token.text!r}", token.start)
        if token.kind == "op" and token.text in ARITHMETIC:
            for frame in self.stack:
                frame.contains_arithmetic = True
        return index + 1

    def _identifier(self, index: int) -> int:
        token = self.tokens[index]
        name = token.text
        following = self._text_at(index + 1)
        lowered = name.lower()
        if lowered in LABEL_LIST_KEYWORDS:
            return self._skip_label_list(index + 1) if following == "(" else index + 1
        if lowered in OPERATOR_KEYWORDS or lowered in LITERAL_IDENTIFIERS:
            return index + 1
        if lowered in MODIFIER_KEYWORDS:
            return index + 2
        if following == "(":
            self.pending_function = name
            return index + 1
        if name in AGGREGATIONS and following in LABEL_LIST_KEYWORDS:
            self.pending_function = name
            return self._skip_label_list(index + 2)
        return self._selector(index, index + 1 if following == "{" else None)

    def _open(self, function: str | None) -> None:
        if function in AGGREGATIONS:
            for frame in self.stack:
                frame.contains_aggregation = True
        self.stack.append(_Frame(function))

    def _selector(self, first: int, brace: int | None) -> int:
        """Record the selector starting at token ``first``; ``brace`` is its '{' token, if any."""
        last = first
        if brace is not None:
            last = self._matching(brace, "{", "}")
        start = self.tokens[first].start
        end = self.tokens[last].end
        self.result.selectors.append(self.query[start:end])
        metric = self.tokens[first].text if self.tokens[first].kind == "ident" else None
        self._check_recording_rule(metric)
        return last + 1

    def _check_recording_rule(self, metric: str | None) -> None:
        function = self._current_function()
        if metric is None or function not in COUNTER_FUNCTIONS:
            return
        parts = metric.split(":")
        # Recording rules are named level:metric:operations; an aggregating operation in the
        # last part means the counters were summed before this counter function.
        if len(parts) >= 3 and _RECORDING_RULE_AGGREGATE.search(parts[-1]):
            self.result.counters_of_aggregates.append(
                CounterOfAggregate(
                    function, f"the recording rule {metric} already aggregates counters"
                )
            )

    def _range(self, index: int) -> int:
        close = self._matching(index, "[", "]")
        inner = self.tokens[index + 1 : close]
        if not inner or inner[0].kind != "duration":
            raise PromQLSyntaxError("expected a duration after '['", self.tokens[index].start)
        is_subquery = any(token.text == ":" for token in inner)
        function = self._current_function()
        self.result.ranges.append(
            RangeSelector(
                parse_duration(inner[0].text), function, is_subquery, inner[0].start, inner[0].end
            )
        )
        if is_subquery and function in COUNTER_FUNCTIONS:
            self._check_subquery(function)
        return close + 1

    def _check_subquery(self, function: str) -> None:
        frame = self.stack[-1]
        if frame.contains_aggregation:
            reason = "the subquery aggregates counters before the counter function"
        elif frame.contains_arithmetic:
            reason = "the subquery combines counters with arithmetic before the counter function"
        else:
            return
        self.result.counters_of_aggregates.append(CounterOfAggregate(function, reason))

    def _current_function(self) -> str | None:
        return self.stack[-1].function if self.stack else None

    def _skip_label_list(self, index: int) -> int:
        if self._text_at(index) != "(":
            return index
        return self._matching(index, "(", ")") + 1

    def _matching(self, index: int, opening: str, closing: str) -> int:
        depth = 0
        for position in range(index, len(self.tokens)):
            text = self.tokens[position].text
            if text == opening:
                depth += 1
            elif text == closing:
                depth -= 1
                if depth == 0:
                    return position
        raise PromQLSyntaxError(f"unclosed {opening!r}", self.tokens[index].start)

    def _text_at(self, index: int) -> str | None:
        return self.tokens[index].text if index < len(self.tokens) else None
