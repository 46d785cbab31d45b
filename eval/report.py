"""Renders scores.json and the predictions as report.md, a self-contained report.html and the CLI table.

    python -c "from eval.report import ci_rows; print(ci_rows({'systems': {}}))"

Both reports hold, in this order: the recommendation (which system to ship, the rule, its costs
and warnings), the verdicts, every system's metrics as mean [95% CI], the retriever's recall, the
paired tests, per-language tables, the forgetting probe, the judge when it ran, and the
per-example side-by-side table, which starts with the recommended system's wrong answers. In the
HTML every model answer is escaped: it is shown as text, never run.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from eval.analysis import COMPARISONS, pair_verdict
from eval.recommend import metric_name
from eval.registry import METRICS

PRIMARY = "answer_match"  # the per-example metric that orders the examples (then chrF)
EXAMPLES_SHOWN = 40


def ci_rows(document: dict[str, Any], systems: dict[str, Any] | None = None) -> list[list[str]]:
    """Rows [system, 'mean [low, high]' per metric] under a header row, from scores.json systems."""
    systems = document["systems"] if systems is None else systems
    rows = [["system", *(metric.label for metric in METRICS.values())]]
    for system, entry in systems.items():
        metrics = entry["metrics"] if "metrics" in entry else entry
        rows.append([system, *(f"{metrics[m]['mean']:.1f} [{metrics[m]['ci_low']:.1f}, {metrics[m]['ci_high']:.1f}]"
                               if m in metrics else "-" for m in METRICS)])
    return rows


def recommendation_lines(document: dict[str, Any]) -> list[str]:
    """Plain sentences of the recommendation: the choice, the rule, what it costs, the warnings."""
    found = document["recommendation"]
    chosen, cost = found["system"], found["costs"][found["system"]]
    latency = "-" if cost["latency_s_median"] is None else f"{cost['latency_s_median']:.3g} s"
    lines = [f"Recommendation: ship {chosen}.", found["rule"],
             f"Cost of {chosen}: {latency} per answer in this eval (median); needs {cost['needs']}; when the FAQ "
             f"changes: {cost['on_faq_change']}."]
    asked = document.get("questions")
    if asked:
        rates = {system: entry["metrics"].get("answer_match", {}).get("mean")
                 for system, entry in asked["systems"].items()}
        best = max((system for system in rates if rates[system] is not None), key=lambda s: rates[s], default=None)
        if rates.get(chosen) is not None and best is not None:
            lines.append(f"On your {asked['n']} own questions ({asked['answerable']} with an answer in training): "
                         f"{chosen} is right on {rates[chosen]:.0f}%" + ("" if best == chosen else
                                                                         f"; best there: {best} ({rates[best]:.0f}%)"))
    lines += [f"Warning: {warning}" for warning in found["warnings"]]
    lines += [f"Flagged: {system}: {reason}" for system, reasons in found["flags"].items() for reason in reasons
              if system != chosen]
    return lines


def recommendation_rows(document: dict[str, Any]) -> list[list[str]]:
    """Rows of the systems on the deciding metric, simplest first, with the test against the top system."""
    found = document["recommendation"]
    tests = {row["b"]: row for row in found["evidence"]["tests"]}
    rows = [["system", metric_name(found["metric"]), "vs top (Holm p)", "latency / answer", "needs", "FAQ change"]]
    for system, mean in found["evidence"]["means"].items():
        test = tests.get(system)
        versus = "top" if system == found["top"] else (f"{-test['diff']:+.1f} (p = {test['p_holm']:.3f})" if test
                                                       else "-")
        cost = found["costs"][system]
        latency = "-" if cost["latency_s_median"] is None else f"{cost['latency_s_median']:.3g} s"
        mark = " (recommended)" if system == found["system"] else ""
        rows.append([system + mark, f"{mean['mean']:.1f} [{mean['ci_low']:.1f}, {mean['ci_high']:.1f}]", versus,
                     latency, cost["needs"], cost["on_faq_change"]])
    return rows


def questions_rows(section: dict[str, Any]) -> list[list[str]]:
    """Rows of the user's own questions: each system's right answers overall and per language, facts, invented."""
    langs = sorted(section["langs"])
    rows = [["system", "Right", *(f"Right ({lang})" for lang in langs), "Facts", "Invented"]]

    def cell(metrics: dict[str, Any], name: str) -> str:
        entry = metrics.get(name)
        return "-" if entry is None else f"{entry['mean']:.1f} [{entry['ci_low']:.1f}, {entry['ci_high']:.1f}]"

    for system, entry in section["systems"].items():
        by_lang = entry.get("by_lang") or {langs[0]: entry["metrics"]}
        rows.append([system, cell(entry["metrics"], "answer_match"),
                     *(cell(by_lang.get(lang, {}), "answer_match") for lang in langs),
                     cell(entry["metrics"], "key_facts"), cell(entry["metrics"], "unsupported_facts")])
    return rows


def retrieval_rows(section: dict[str, Any]) -> list[list[str]]:
    """Rows of the retriever's recall: all, then per language."""
    rows = [["test records", "n", "answer in training", "close pair found", "recall@1", "recall@3"]]
    for name, figures in [("all", section), *section.get("by_lang", {}).items()]:
        rows.append([name, str(figures["n"]), str(figures["answerable"]), str(figures["retrieved"]),
                     f"{figures['recall_at_1']:.1f}", f"{figures['recall_at_3']:.1f}"])
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
        table.append([f"{row['a']} - {row['b']}", METRICS[row["metric"]].label, f"{row['diff']:+.1f}",
                      f"{row['p_value']:.4f}", f"{row['p_holm']:.4f}", row["verdict"]])
    return table


def probe_intro(probe: dict[str, Any]) -> str:
    """The sentence introducing the probe table."""
    langs = ", ".join(f"{lang}: {count}" for lang, count in probe["langs"].items())
    return f"{probe['n']} general questions ({langs}) asked of base and tuned with the run's system prompt:"


def probe_findings(probe: dict[str, Any]) -> list[str]:
    """Plain sentences on the probe: each significant drop, or that there is none."""
    drops = [row for row in probe["comparisons"] if row["significant"] and not row["better"]]
    if not drops:
        return ["No significant drop on the probe: no sign of catastrophic forgetting."]
    return [f"Forgetting: tuned is {abs(row['diff']):.1f} points worse on {METRICS[row['metric']].label} "
            f"(Holm p = {row['p_holm']:.4f})." for row in drops]


def probe_lines(probe: dict[str, Any] | None) -> list[str]:
    """Markdown lines of the forgetting probe section."""
    if not probe:
        return ["Not run (eval.forgetting_probe is off, or base and tuned did not both run)."]
    return [probe_intro(probe), "", markdown_table(ci_rows(probe, probe["systems"])), "",
            *(f"- {line}" for line in probe_findings(probe))]


def ordered_examples(rows: list[dict[str, Any]], systems: list[str],
                     first: str | None = None) -> list[dict[str, dict[str, Any]]]:
    """Groups test prediction rows by record: `first`'s wrong answers first, then the largest spread of
    answer_match (then chrF) between systems."""
    by_id: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        if row.get("set", "test") == "test":
            by_id.setdefault(row["id"], {})[row["system"]] = row

    def score(row: dict[str, Any], metric: str) -> float:
        value = row["scores"].get(metric)
        return -1.0 if value is None else value

    def order(answers: dict[str, dict[str, Any]]) -> tuple:
        wrong = first in answers and score(answers[first], PRIMARY) == 0
        spread = [max(score(r, m) for r in answers.values()) - min(score(r, m) for r in answers.values())
                  for m in (PRIMARY, "chrf")]
        return (not wrong, -spread[0], -spread[1])

    return sorted(by_id.values(), key=order)


def chart_png(document: dict[str, Any]) -> bytes:
    """Draws grouped bars (one group per metric, one bar per system) with 95% CI whiskers; PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    systems = list(document["systems"])
    metrics = list(METRICS)
    width = 0.8 / max(1, len(systems))
    figure, axes = plt.subplots(figsize=(12, 4), dpi=100)
    empty = {"mean": 0.0, "ci_low": 0.0, "ci_high": 0.0}
    for index, system in enumerate(systems):
        entries = [document["systems"][system]["metrics"].get(m, empty) for m in metrics]
        means = [e["mean"] for e in entries]
        errors = [[e["mean"] - e["ci_low"] for e in entries], [e["ci_high"] - e["mean"] for e in entries]]
        positions = [m + (index - (len(systems) - 1) / 2) * width for m in range(len(metrics))]
        axes.bar(positions, means, width, yerr=errors, capsize=3, label=system)
    axes.set_xticks(range(len(metrics)), [METRICS[m].label + ("" if METRICS[m].higher_is_better else " (lower=better)")
                                          for m in metrics], fontsize=8)
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
