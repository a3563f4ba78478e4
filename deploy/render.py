#!/usr/bin/env python3
"""Fill the ``@…@`` placeholders of a deploy/ template: ``render.py TEMPLATE NAME=VALUE…``.

The result goes to standard output. A line whose placeholder name ends in ``_EACH`` is
written once per space-separated item of its value (e.g. one nginx ``server`` line per
signaling node). A placeholder with no value is an error, so nothing half-filled is
deployed. Standard library only: operators use it as the lab does.
"""

from __future__ import annotations

import re
import sys

PLACEHOLDER = re.compile(r"@([A-Z][A-Z0-9_]*)@")


def render(template: str, values: dict[str, str]) -> str:
    """The template with every placeholder filled; ``KeyError`` names a missing value."""
    out: list[str] = []
    for line in template.splitlines(keepends=True):
        names = PLACEHOLDER.findall(line)
        missing = [n for n in names if n not in values]
        if missing:
            raise KeyError(", ".join(sorted(set(missing))))
        each = [n for n in names if n.endswith("_EACH")]
        if len(set(each)) > 1:
            raise ValueError(f"one _EACH placeholder per line: {line.strip()}")
        items = values[each[0]].split() if each else [""]
        for item in items:
            fills = dict(values, **({each[0]: item} if each else {}))
            out.append(PLACEHOLDER.sub(lambda m, f=fills: f[m.group(1)], line))
    return "".join(out)


def main(argv: list[str]) -> int:
    """Render ``argv[0]`` with ``NAME=VALUE`` pairs to standard output."""
    if not argv:
        print("usage: render.py TEMPLATE NAME=VALUE…", file=sys.stderr)
        return 2
    values = dict(arg.split("=", 1) for arg in argv[1:])
    with open(argv[0], encoding="utf-8") as f:
        template = f.read()
    try:
        sys.stdout.write(render(template, values))
    except KeyError as exc:
        print(f"{argv[0]}: no value for {exc.args[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
