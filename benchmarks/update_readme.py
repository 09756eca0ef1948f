"""The results of ``benchmarks/run.py`` as tables: on the console, in the README and in the docs.

Rewrite the benchmark tables from a saved results file:

    python benchmarks/run.py --json results.json
    python benchmarks/update_readme.py results.json [README.md]

or in one step ``python benchmarks/run.py --readme``. Only the text between the markers
``<!-- bench:start -->`` and ``<!-- bench:end -->`` is replaced, in the README and in
``docs/benchmarks.md`` (which carries the same block).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from workloads import TOOLS  # noqa: E402

TOOL_NAMES = {"labledger": "labledger", "mlflow": "MLflow", "dvclive": "DVCLive"}
#: the docs page that carries a copy of the README's block
DOCS_COPY = HERE.parent / "docs" / "benchmarks.md"

#: (workload, figure key, label, unit, labledger's target or None, lower is better).
#: ``{W1}`` … in a label is labledger's size of that workload at the run's scale.
FIGURES: list[tuple[str, str, str, str, float | None, bool]] = [
    ("W1", "us_per_call", "log_metric, per call ({W1}-call loop)", "µs", 0.5, True),
    ("W1", "end_ms", "end() after that loop", "ms", None, True),
    ("W2", "points_per_s", "{W2} steps × 20 keys: log_metrics + end()", "pts/s", 2e6, False),
    ("W3", "cold_ms", "read a {W3}-pt history, first in process", "ms", 5.0, True),
    ("W3", "warm_ms", "the same, second read (warm)", "ms", None, True),
    ("W4", "write_ms_per_run", "{W4} runs × (10 params, 5 metrics): write", "ms/run", None, True),
    ("W4", "list_cold_ms", "list them, first in process", "ms", 25.0, True),
    ("W4", "list_warm_ms", "the same, second listing (warm)", "ms", None, True),
    ("W5", "overhead_s", "GridSearchCV {W5}×5: tracked − untracked", "s", None, True),
    ("W5", "overhead_cpu_s", "the same in CPU seconds", "s", None, True),
    ("W6", "import_ms", "python -c 'import TOOL', wall", "ms", 40.0, True),
    ("W6", "import_minus_bare_ms", "the same minus python -c pass", "ms", None, True),
    ("W7", "f32_db_bpp", "{W7}-pt float32 training curve: db file", "B/pt", 4.0, True),
    ("W7", "f32_chunk_bpp", "the same, chunks alone", "B/pt", None, True),
    ("W7", "f64_db_bpp", "{W7}-pt float64 curve: db file", "B/pt", None, True),
    ("W7", "f64_chunk_bpp", "the same, chunks alone", "B/pt", None, True),
    ("W8", "new_first_ms", "start_run, new store, first in process", "ms", 5.0, True),
    ("W8", "new_second_ms", "start_run, 2nd new store (warm process)", "ms", 5.0, True),
    ("W8", "existing_ms", "start_run, existing store (median of 20)", "ms", 0.3, True),
    ("W9", "page_cold_ms", "{W9}-run experiment page, 1st request", "ms", 300.0, True),
    ("W9", "page_warm_ms", "the same, warm", "ms", 300.0, True),
    ("W9", "json_cold_ms", "its 50 runs as JSON, 1st request", "ms", None, True),
    ("W9", "json_warm_ms", "the same, warm", "ms", None, True),
    ("W10", "cold_ms", "{W10}-pt metric as a chart, 1st request", "ms", 200.0, True),
    ("W10", "warm_ms", "the same, warm", "ms", 200.0, True),
]

#: what each peer does differently, named in the footnote when its size differs from labledger's
PEER_NOTES = {
    ("mlflow", "W1"): "{n} calls",
    ("dvclive", "W1"): "{n} calls",
    ("mlflow", "W2"): "{n} steps",
    ("dvclive", "W2"): "{n} steps",
    ("mlflow", "W7"): "{n} pts/curve (log_batch)",
    ("dvclive", "W7"): "{n} pts/curve",
}

START = "<!-- bench:start -->"
END = "<!-- bench:end -->"

COLUMNS = [
    ("id", "id"),
    ("workload", "workload"),
    ("unit", "unit"),
    ("labledger", "labledger"),
    ("mlflow", "MLflow"),
    ("ratio_mlflow", "ll/MLflow"),
    ("dvclive", "DVCLive"),
    ("ratio_dvclive", "ll/DVCLive"),
    ("target", "target"),
    ("met", "met"),
]


def num(x: float) -> str:
    """About three significant figures, thousands separated; millions as ``1.23M``."""
    ax = abs(x)
    if ax >= 1e6:
        return f"{x / 1e6:.2f}M"
    if ax >= 100:
        return f"{x:,.0f}"
    if ax >= 10:
        return f"{x:.1f}"
    if ax >= 0.1 or ax == 0:
        return f"{x:.2f}"
    return f"{x:.3f}" if ax >= 0.001 else f"{x:.1e}"


def count(n: int) -> str:
    """100000 → ``100k``, 1000000 → ``1M``."""
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 10_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return f"{n:,}"


def _target(target: float, lower: bool) -> str:
    shown = f"{target / 1e6:g}M" if target >= 1e6 else f"{target:g}"
    return ("≤ " if lower else "≥ ") + shown


def _cell(stats: dict[str, Any], key: str) -> str | None:
    med = stats.get("median", {}).get(key)
    if med is None:
        return None
    lo, hi = num(stats["min"][key]), num(stats["max"][key])
    return num(med) if lo == hi else f"{num(med)} ({lo}–{hi})"


def label(template: str, doc: dict[str, Any]) -> str:
    sizes = doc.get("sizes", {})
    return template.format(**{w: count(s["labledger"]) for w, s in sizes.items()}) if sizes else template


def rows(doc: dict[str, Any], workloads: list[str]) -> list[dict[str, str]]:
    """One row per figure: each tool's median (min–max), the ratio labledger/peer, target, met."""
    out = []
    results = doc["results"]
    for w, key, template, unit, target, lower in FIGURES:
        if w not in workloads:
            continue
        row = {"id": w, "key": key, "workload": label(template, doc), "unit": unit}
        ours = results["labledger"].get(w, {}).get("median", {}).get(key)
        for tool in TOOLS:
            res = results[tool]
            r = res.get(w, {})
            cell, ratio = _cell(r, key), ""
            if "skipped" in res:
                cell = res["skipped"]
            elif cell is None:
                cell = r.get("unavailable") or ("failed" if "error" in r else "—")
            elif w != "W5" and r["n"][key] < doc["repeat"]:
                cell += f" [{r['n'][key]:.0f} of {doc['repeat']}]"  # some rounds failed
            elif tool != "labledger" and ours is not None and r["median"][key]:
                ratio = _ratio(ours / r["median"][key])
            row[tool] = cell
            row[f"ratio_{tool}"] = ratio
        if target is None:
            row["target"], row["met"] = "—", "—"
        else:
            row["target"] = _target(target, lower)
            if ours is None:
                row["met"] = "?"
            else:
                row["met"] = "yes" if (ours <= target if lower else ours >= target) else "NO"
        out.append(row)
    return out


def _ratio(x: float) -> str:
    if x >= 100:
        return f"{x:,.0f}×"
    if x >= 10:
        return f"{x:.1f}×"
    if x >= 0.1:
        return f"{x:.2f}×"
    mantissa, exponent = f"{x:.1e}".split("e")
    return f"{mantissa}e{int(exponent)}×"


def notes(doc: dict[str, Any]) -> list[str]:
    """The footnotes: the peers' sizes where they differ, W5's searches, the bare interpreter."""
    out = []
    sizes = doc.get("sizes", {})
    for tool in TOOLS[1:]:
        res = doc["results"].get(tool, {})
        if "skipped" in res:
            continue
        parts = [
            f"{w} " + note.format(n=count(sizes[w][tool]))
            for (t, w), note in PEER_NOTES.items()
            if t == tool and w in res and w in sizes and sizes[w][tool] != sizes[w]["labledger"]
        ]
        if parts:
            out.append(f"{TOOL_NAMES[tool]} ran smaller: " + ", ".join(parts))
    w5 = []
    for tool in TOOLS:
        r = doc["results"].get(tool, {}).get("W5", {}).get("repeats", [{}])[0]
        if "untracked_s" in r:
            w5.append(f"{TOOL_NAMES[tool]} {num(r['untracked_s'])} → {num(r['tracked_s'])} s")
    if w5:
        out.append("W5 untracked → tracked (best of alternating rounds, one process): " + ", ".join(w5))
    bare = doc["results"].get("labledger", {}).get("W6", {}).get("median", {}).get("bare_ms")
    if bare is not None:
        out.append(f"W6 `python -c pass`: {bare:.0f} ms")
    return out


def _versions(doc: dict[str, Any]) -> str:
    return ", ".join(f"{TOOL_NAMES[t]} {v}" for t, v in doc["versions"].items() if v)


def print_table(
    doc: dict[str, Any], table: list[dict[str, str]], columns: list[tuple[str, str]] = COLUMNS
) -> None:
    print(f"\n{doc['date']} — {doc['machine']} — scale {doc['scale']} — {_versions(doc)}")
    print(f"each cell: median of {doc['repeat']} fresh-process rounds (min–max)")
    head = [title for _, title in columns]
    body = [[r[k] for k, _ in columns] for r in table]
    width = [max(len(x) for x in col) for col in zip(head, *body, strict=True)]
    for line in [head, ["-" * w for w in width], *body]:
        print("  ".join(c.ljust(w) for c, w in zip(line, width, strict=True)).rstrip())
    if columns is COLUMNS:
        print("ratio = labledger ÷ peer (medians): below 1 is better for times and sizes, above 1 for rates")
    for note in notes(doc):
        print(note)
    for tool in TOOLS:
        for w, res in doc["results"].get(tool, {}).items():
            if not isinstance(res, dict):
                continue
            for err in dict.fromkeys(res.get("errors", []) + ([res["error"]] if "error" in res else [])):
                print(f"{w} {TOOL_NAMES[tool]} failed: {err}")


def print_own_table(doc: dict[str, Any], table: list[dict[str, str]]) -> None:
    """labledger's column alone (``benchmarks/hot_path.py``)."""
    keep = {"id", "workload", "unit", "labledger", "target", "met"}
    print_table(doc, table, [c for c in COLUMNS if c[0] in keep])


class MarkersNotFoundError(Exception):
    """The file has no ``<!-- bench:start -->`` … ``<!-- bench:end -->`` block."""


#: Figures the docs' table shows and the README's leaves out (it has a size limit).
DOCS_ONLY = {("W9", "json_cold_ms"), ("W9", "json_warm_ms")}
_RANGE = re.compile(r" \([^()]*–[^()]*\)")


def markdown(doc: dict[str, Any], compact: bool = False) -> str:
    """The results as a Markdown paragraph, table and footnote (``compact``: medians only, the
    ranges left to the docs' copy)."""
    spread = "the ranges are in docs/benchmarks.md" if compact else "(min–max)"
    lines = [
        f"`benchmarks/run.py`, {doc['date']}, {doc['machine']}, "
        f"scale {doc['scale']}, {_versions(doc)}. Each cell: median of {doc['repeat']} rounds, "
        f"each in a fresh interpreter; {spread}; *first in process* / *1st request* is the cold "
        "figure. MLflow on SQLite. Ratio = labledger ÷ peer.",
        "",
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "|".join("---" for _ in COLUMNS) + "|",
    ]
    for row in doc["table"]:
        if compact and (row["id"], row.get("key")) in DOCS_ONLY:
            continue
        cells = [str(row[k]).replace("|", "\\|") for k, _ in COLUMNS]
        if compact:
            cells = [_RANGE.sub("", c) for c in cells]
        lines.append("| " + " | ".join(cells) + " |")
    extra = notes(doc)
    if extra:
        lines += ["", "; ".join(extra) + "."]
    return "\n".join(lines)


def update_readme(readme: Path, doc: dict[str, Any], compact: bool = False) -> None:
    """Replace the text between the markers in ``readme`` with the table of ``doc``."""
    text = readme.read_text(encoding="utf-8")
    # the markers count only on lines of their own (prose may mention them)
    start = re.search(rf"^{re.escape(START)}[ \t]*$", text, re.MULTILINE)
    end = re.search(rf"^{re.escape(END)}[ \t]*$", text[start.end() :] if start else "", re.MULTILINE)
    if start is None or end is None:
        raise MarkersNotFoundError(
            f"{readme} has no {START} ... {END} block (each marker on a line of its own); add them first"
        )
    new = text[: start.end()] + "\n" + markdown(doc, compact) + "\n" + text[start.end() + end.start() :]
    readme.write_text(new, encoding="utf-8")


def update_all(readme: Path, doc: dict[str, Any]) -> list[Path]:
    """Rewrite the block in ``readme`` and, when it is this repository's README, in the docs page's
    copy; returns the files rewritten."""
    done = [readme]
    ours = readme.resolve() == (HERE.parent / "README.md").resolve()
    update_readme(readme, doc, compact=ours and DOCS_COPY.exists())
    if ours and DOCS_COPY.exists():
        update_readme(DOCS_COPY, doc)
        done.append(DOCS_COPY)
    return done


def main(argv: list[str]) -> int:
    if not argv or len(argv) > 2:
        print(__doc__, file=sys.stderr)
        return 2
    readme = Path(argv[1]) if len(argv) == 2 else HERE.parent / "README.md"
    for path in update_all(readme, json.loads(Path(argv[0]).read_text())):
        print(f"updated the benchmark table in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
