"""The results of ``benchmarks/run.py`` as tables: on the console, and in the README.

Rewrite the README's benchmark table from a saved results file:

    python benchmarks/run.py --json results.json
    python benchmarks/update_readme.py results.json [README.md]

or in one step ``python benchmarks/run.py --readme``. Only the text between the
markers ``<!-- bench:start -->`` and ``<!-- bench:end -->`` is replaced.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

TOOLS = ("labledger", "mlflow", "dvclive")
TOOL_NAMES = {"labledger": "labledger", "mlflow": "MLflow", "dvclive": "DVCLive"}

#: (workload, figure key, label, unit, format, target, lower is better)
FIGURES: list[tuple[str, str, str, str, str, float, bool]] = [
    ("W1", "us_per_call", "log_metric 10k× + end", "µs/call", "{:,.2f}", 2.0, True),
    ("W2", "points_per_s", "2,000 steps × 20 metrics", "points/s", "{:,.0f}", 1_000_000.0, False),
    ("W3", "read_ms", "read a 100k-point history", "ms", "{:,.1f}", 20.0, True),
    ("W4", "write_ms_per_run", "1,000 runs: write", "ms/run", "{:,.2f}", 2.0, True),
    ("W4", "list_ms", "1,000 runs: list as DataFrame", "ms", "{:,.1f}", 50.0, True),
    ("W5", "overhead_s", "GridSearchCV 100×5 tracked − untracked", "s", "{:,.2f}", 0.5, True),
    ("W5", "overhead_cpu_s", "the same in CPU seconds of the process", "s", "{:,.2f}", 0.5, True),
    ("W6", "import_ms", "python -c 'import TOOL'", "ms", "{:,.0f}", 100.0, True),
    ("W7", "bytes_per_point", "bytes on disk per point after W2", "B", "{:,.1f}", 24.0, True),
]

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"

_COLUMNS = [
    ("id", "id"),
    ("workload", "workload"),
    ("unit", "unit"),
    ("labledger", "labledger"),
    ("mlflow", "MLflow"),
    ("ratio_mlflow", "labledger/MLflow"),
    ("dvclive", "DVCLive"),
    ("ratio_dvclive", "labledger/DVCLive"),
    ("target", "labledger target"),
    ("met", "met"),
]


def rows(doc: dict[str, Any], workloads: list[str]) -> list[dict[str, str]]:
    """One row per figure: labledger, each peer with the ratio labledger/peer, target, met."""
    out = []
    results = doc["results"]
    for w, key, label, unit, fmt, target, lower in FIGURES:
        if w not in workloads:
            continue
        row = {"id": w, "workload": label, "unit": unit}
        ours = results["labledger"].get(w, {}).get(key)
        for tool in TOOLS:
            res = results[tool]
            r = res.get(w, {})
            if "skipped" in res:
                cell, ratio = res["skipped"], ""
            elif key in r:
                cell = fmt.format(r[key])
                peer = tool != "labledger" and ours is not None and r[key]
                ratio = _ratio(ours / r[key]) if peer else ""
            else:
                cell, ratio = (r.get("unavailable") or r.get("error") or "not measured"), ""
            row[tool] = cell
            row[f"ratio_{tool}"] = ratio
        row["target"] = ("≤ " if lower else "≥ ") + f"{target:,.{0 if target >= 1 else 1}f} {unit}"
        if ours is None:
            row["met"] = "?"
        else:
            row["met"] = "yes" if (ours <= target if lower else ours >= target) else "NO"
        out.append(row)
    return out


def _ratio(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 0.1:
        return f"{x:.2f}×"
    return f"{x:.1e}×"


COLUMNS = [
    ("id", "id"),
    ("workload", "workload"),
    ("unit", "unit"),
    ("labledger", "labledger"),
    ("mlflow", "MLflow"),
    ("ratio_mlflow", "ll/MLflow"),
    ("dvclive", "DVCLive"),
    ("ratio_dvclive", "ll/DVCLive"),
    ("target", "labledger target"),
    ("met", "met"),
]


def print_table(doc: dict[str, Any], table: list[dict[str, str]]) -> None:
    versions = ", ".join(f"{TOOL_NAMES[t]} {v or 'not installed'}" for t, v in doc["versions"].items())
    print(f"\n{doc['date']} — {doc['machine']} — scale {doc['scale']} — {versions}")
    head = [title for _, title in COLUMNS]
    body = [[r[k] for k, _ in COLUMNS] for r in table]
    width = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    for line in [head, ["-" * w for w in width], *body]:
        print("  ".join(c.ljust(w) for c, w in zip(line, width, strict=True)).rstrip())
    print(
        "ratio = labledger's figure ÷ the peer's (below 1 is better for times and sizes, above 1 for rates)"
    )
    for tool in TOOLS:
        w5 = doc["results"][tool].get("W5", {})
        if "untracked_s" in w5:
            print(
                f"W5 {TOOL_NAMES[tool]}: untracked {w5['untracked_s']:.2f} s, "
                f"tracked {w5['tracked_s']:.2f} s (best of {len(w5['pair_overheads_s'])} alternating "
                f"rounds), {w5['runs']} runs recorded"
            )
    if "interpreter_ms" in doc:
        print(f"W6 bare interpreter start: {doc['interpreter_ms']:.0f} ms")


class MarkersNotFoundError(Exception):
    """The README has no ``<!-- bench:start -->`` … ``<!-- bench:end -->`` block."""


def markdown(doc: dict[str, Any]) -> str:
    """The results as a Markdown paragraph and table."""
    versions = doc["versions"]
    names = {"labledger": "labledger", "mlflow": "MLflow", "dvclive": "DVCLive"}
    shown = ", ".join(f"{names[t]} {v}" for t, v in versions.items() if v)
    lines = [
        f"Measured with `benchmarks/run.py` (what `python3 -m tox -e bench` runs) on {doc['date']} "
        f"({doc['machine']}; "
        f"scale {doc['scale']}; {shown}). MLflow uses a SQLite backend store; every "
        "measurement runs in a fresh process and folder, best of "
        f"{doc['repeat']} rounds. Ratio = labledger's figure ÷ the peer's.",
        "",
        "| " + " | ".join(title for _, title in _COLUMNS) + " |",
        "|" + "|".join("---" for _ in _COLUMNS) + "|",
    ]
    for row in doc["table"]:
        cells = [str(row[k]) for k, _ in _COLUMNS]
        cells[1] = cells[1].replace("|", "\\|")
        lines.append("| " + " | ".join(cells) + " |")
    extra = []
    for tool, name in names.items():
        w5 = doc["results"].get(tool, {}).get("W5", {})
        if "untracked_s" in w5:
            extra.append(
                f"W5 with {name}: {w5['untracked_s']:.1f} s untracked, {w5['tracked_s']:.1f} s tracked "
                f"({w5['runs']} runs recorded)"
            )
    if "interpreter_ms" in doc:
        extra.append(f"a bare interpreter starts in {doc['interpreter_ms']:.0f} ms")
    if extra:
        lines += ["", "; ".join(extra) + "."]
    return "\n".join(lines)


def update_readme(readme: Path, doc: dict[str, Any]) -> None:
    """Replace the text between the markers in ``readme`` with the table of ``doc``."""
    text = readme.read_text(encoding="utf-8")
    # the markers count only on lines of their own (prose may mention them)
    start = re.search(rf"^{re.escape(START)}[ \t]*$", text, re.MULTILINE)
    end = re.search(rf"^{re.escape(END)}[ \t]*$", text[start.end() :] if start else "", re.MULTILINE)
    if start is None or end is None:
        raise MarkersNotFoundError(
            f"{readme} has no {START} ... {END} block (each marker on a line of its own); add them first"
        )
    new = text[: start.end()] + "\n" + markdown(doc) + "\n" + text[start.end() + end.start() :]
    readme.write_text(new, encoding="utf-8")


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    readme = Path(argv[1]) if len(argv) == 2 else Path(__file__).resolve().parent.parent / "README.md"
    update_readme(readme, json.loads(Path(argv[0]).read_text()))
    print(f"updated the benchmark table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
