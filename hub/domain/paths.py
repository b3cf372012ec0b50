"""Source paths into nested payloads: `a.b`, `items[0].x`, `items[*].x`, `phones[type=work].number`.

A path is data, parsed by this small grammar and nothing else; a missing step yields None,
never an exception, because vendor payloads omit keys all the time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from hub.domain.errors import ConfigurationError

_STEP = re.compile(r"([^.\[\]]+)|\[(\*|-?\d+|[A-Za-z0-9_]+=[^\]]*)\]")


@dataclass(frozen=True)
class Step:
    key: str | None = None
    index: int | None = None
    every: bool = False
    match: tuple[str, str] | None = None


def parse_path(path: str) -> tuple[Step, ...]:
    steps: list[Step] = []
    pos = 0
    while pos < len(path):
        if path[pos] == ".":
            pos += 1
            continue
        found = _STEP.match(path, pos)
        if not found:
            raise ConfigurationError(f"cannot read path {path!r} at position {pos}")
        key, bracket = found.groups()
        if key is not None:
            steps.append(Step(key=key))
        elif bracket == "*":
            steps.append(Step(every=True))
        elif "=" in bracket:
            name, _, wanted = bracket.partition("=")
            steps.append(Step(match=(name, wanted)))
        else:
            steps.append(Step(index=int(bracket)))
        pos = found.end()
    if not steps:
        raise ConfigurationError("a source path cannot be empty")
    return tuple(steps)


def _text(value: Any) -> str:
    """How a JSON value is written in a [key=value] filter: true, false, null, 12, work."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def resolve(data: Any, steps: tuple[Step, ...]) -> Any:
    """The value at the path, a list for `[*]` and `[k=v]` steps, or None when absent."""
    current = data
    for position, step in enumerate(steps):
        if current is None:
            return None
        if step.key is not None:
            current = current.get(step.key) if isinstance(current, dict) else None
        elif step.index is not None:
            in_range = isinstance(current, list) and -len(current) <= step.index < len(current)
            current = current[step.index] if in_range else None
        else:
            if not isinstance(current, list):
                return None
            items = current
            if step.match is not None:
                name, wanted = step.match
                items = [i for i in items if isinstance(i, dict) and _text(i.get(name)) == wanted]
            rest = steps[position + 1 :]
            values = [resolve(item, rest) for item in items]
            return [v for v in values if v is not None]
    return current
