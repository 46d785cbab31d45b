"""Renders scores.json and the predictions as report.md, a self-contained report.html and the CLI table.

    python -c "from eval.report import ci_rows; print(ci_rows({'systems': {}}))"

Both reports hold: the verdicts (tuned vs base, tuned vs rag), every system's metrics as
mean [95% CI], the paired tests, per-language tables, the forgetting probe, the judge when it
ran, and the per-example side-by-side table with the biggest wins and losses (tuned - base token
F1) first. In the HTML every model answer is escaped: it is shown as text, never run.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from eval.analysis import COMPARISONS, pair_verdict
from eval.scoring import METRIC_LABELS

PRIMARY = "f1"  # the per-example metric that orders wins and losses
EXAMPLES_SHOWN = 40


def ci_rows(document: dict[str, Any], systems: dict[str, Any] | None = None) -> list[list[str]]:
    """Rows [system, 'mean [low, high]' per metric] under a header row, from scores.json systems."""
    systems = document["systems"] if systems is None else systems
    rows = [["system", *METRIC_LABELS.values()]]
    for system, entry in systems.items():
        metrics = entry["metrics"] if "metrics" in entry else entry
        rows.append([system, *(f"{metrics[m]['mean']:.1f} [{metrics[m]['ci_low']:.1f}, {metrics[m]['ci_high']:.1f}]"
                               for m in METRIC_LABELS)])
    return rows


def text_table(rows: list[list[str]]) -> str:
    """Lays rows out as aligned plain text (first column left, others right)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join([row[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(row[1:], widths[1:]))]).rstrip()
                     for row in rows)


def markdown_table(rows: list[list[str]]) -> str:
    """Renders rows as a Markdown table (cells' pipes escaped)."""
    cells = [[cell.replace("|", "\\|").replace("\n", " ") for cell in row] for row in rows]
    lines = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(cells[0])]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells[1:]])


def verdicts(document: dict[str, Any]) -> list[str]:
    """One sentence per comparison that ran."""
    ran = {(row["a"], row["b"]) for row in document["comparisons"]}
    return [pair_verdict(document["comparisons"], a, b) for a, b in COMPARISONS if (a, b) in ran]


def comparison_rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    """Rows of the paired tests: comparison, metric, difference, p, Holm p, verdict."""
    table = [["comparison", "metric", "diff", "p", "p (Holm)", "verdict"]]
    for row in rows:
        table.append([f"{row['a']} - {row['b']}", METRIC_LABELS[row["metric"]], f"{row['diff']:+.1f}",
                      f"{row['p_value']:.4f}", f"{row['p_holm']:.4f}", row["verdict"]])
    return table


def probe_intro(probe: dict[str, Any]) -> str:
    """The sentence introducing the probe table."""
    langs = ", ".join(f"{lang}: {count}" for lang, count in probe["langs"].items())
    return f"{probe['n']} general questions ({langs}) asked of base and tuned with the run's system prompt:"


def probe_findings(probe: dict[str, Any]) -> list[str]:
    """Plain sentences on the probe: each significant drop, or that there is none."""
    drops = [row for row in probe["comparisons"] if row["significant"] and row["diff"] < 0]
    if not drops:
        return ["No significant drop on the probe: no sign of catastrophic forgetting."]
    return [f"Forgetting: tuned drops {-row['diff']:.1f} points of {METRIC_LABELS[row['metric']]} "
            f"(Holm p = {row['p_holm']:.4f})." for row in drops]


def probe_lines(probe: dict[str, Any] | None) -> list[str]:
    """Markdown lines of the forgetting probe section."""
    if not probe:
        return ["Not run (eval.forgetting_probe is off, or base and tuned did not both run)."]
    return [probe_intro(probe), "", markdown_table(ci_rows(probe, probe["systems"])), "",
            *(f"- {line}" for line in probe_findings(probe))]


def ordered_examples(rows: list[dict[str, Any]], systems: list[str]) -> list[dict[str, dict[str, Any]]]:
    """Groups test prediction rows by record; biggest |tuned - base| (or first two systems) first."""
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get("set", "test") == "test":
            by_id.setdefault(row["id"], {})[row["system"]] = row
    a, b = ("tuned", "base") if {"tuned", "base"} <= set(systems) else (systems[0], systems[-1])

    def swing(answers: dict[str, dict[str, Any]]) -> float:
        return abs(answers[a]["scores"][PRIMARY] - answers[b]["scores"][PRIMARY])

    return sorted(by_id.values(), key=swing, reverse=True)


def chart_png(document: dict[str, Any]) -> bytes:
    """Draws grouped bars (one group per metric, one bar per system) with 95% CI whiskers; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(document["systems"])
    metrics = list(METRIC_LABELS)
    width = 0.8 / max(1, len(systems))
    figure, axes = plt.subplots(figsize=(10, 4), dpi=100)
    for index, system in enumerate(systems):
        entries = [document["systems"][system]["metrics"][m] for m in metrics]
        means = [e["mean"] for e in entries]
        errors = [[e["mean"] - e["ci_low"] for e in entries], [e["ci_high"] - e["mean"] for e in entries]]
        positions = [m + (index - (len(systems) - 1) / 2) * width for m in range(len(metrics))]
        axes.bar(positions, means, width, yerr=errors, capsize=3, label=system)
    axes.set_xticks(range(len(metrics)), [METRIC_LABELS[m] for m in metrics])
    axes.set_ylabel("mean per example (0-100), 95% CI")
    axes.set_ylim(0, 100)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def chart_data_uri(document: dict[str, Any]) -> str:
    """The chart as a data: URI for an <img> (keeps the HTML self-contained)."""
    return "data:image/png;base64," + base64.b64encode(chart_png(document)).decode("ascii")


def escape(text: Any) -> str:
    """HTML-escapes any value (answers may hold markup that must show as text)."""
    return html.escape(str(text), quote=True)
