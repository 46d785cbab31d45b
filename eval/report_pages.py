"""Builds eval/report.md and the self-contained eval/report.html from scores.json and predictions.

    python -c "import eval.report_pages"   # used by eval/stage.py

The pages show the same facts in the same order (see eval/report.py for the pieces).
"""

from __future__ import annotations

from typing import Any

from eval.registry import METRICS
from eval.report import (EXAMPLES_SHOWN, chart_data_uri, ci_rows, comparison_rows, escape, markdown_table,
                         ordered_examples, probe_findings, probe_intro, probe_lines, questions_rows,
                         recommendation_lines, recommendation_rows, retrieval_rows, verdicts)


def setup_line(document: dict[str, Any]) -> str:
    """Describes what was compared and how, in one sentence."""
    decoding = document["decoding"]
    how = ("greedy" if decoding["temperature"] == 0
           else f"temperature {decoding['temperature']}, top_p {decoding['top_p']}")
    langs = ", ".join(f"{lang}: {count}" for lang, count in document["langs"].items())
    return (f"{document['n']} test records ({langs}); systems {', '.join(document['systems'])}; backend "
            f"{document['backend']}; {how} decoding, max {decoding['max_new_tokens']} new tokens; retrieval: BM25, "
            f"rag systems get the top-{document['rag_k']} training pairs. Scores are means of per-example scores "
            "(0-100) with bootstrap 95% CIs; comparisons are paired randomization tests, Holm-adjusted over the "
            "metrics. Right = answer_match (the reply is closer to its reference than to any other answer of the "
            "data), Facts = key facts of the reference stated, Invented = replies stating a fact given nowhere "
            "(lower is better).")


def _tokenizer_line(document: dict[str, Any]) -> str:
    first = next(iter(document["systems"].values()))["metrics"]
    return "Tokenizers: " + "; ".join(f"{METRICS[m].label} {first[m]['tokenizer']}" for m in METRICS if m in first)


def _judge_rows(judge: dict[str, Any]) -> list[list[str]]:
    rows = [["system", "judge mean (1-5)", "judged", "failed"]]
    for system, entry in judge.items():
        mean = "-" if entry["mean"] is None else f"{entry['mean']:.2f}"
        rows.append([system, mean, str(entry["n"]), str(entry["failed"])])
    return rows


def _verdict(row: dict[str, Any]) -> str:
    """A row's correctness in a few words: right/wrong, facts, invented facts."""
    scores = row["scores"]
    parts = [] if scores.get("answer_match") is None else ["right" if scores["answer_match"] else "WRONG"]
    if scores.get("key_facts") is not None:
        parts.append(f"facts {scores['key_facts']:.0f}%")
    if row.get("unsupported"):
        parts.append("invented: " + ", ".join(row["unsupported"]))
    return "; ".join(parts + [f"chrF {scores['chrf']:.1f}"])


def _example_markdown(answers: dict[str, dict[str, Any]], systems: list[str]) -> list[str]:
    first = next(iter(answers.values()))
    lines = [f"### {first['id']} ({first['lang']})", "", f"**Question:** {first['question']}", "",
             f"**Reference:** {first['reference']}", ""]
    for system in systems:
        row = answers[system]
        lines += [f"**{system}** ({_verdict(row)}): {row['prediction']}", ""]
    return lines


def _examples_title(document: dict[str, Any]) -> str:
    return f"Examples ({document['recommendation']['system']}'s wrong answers first)"


def report_markdown(name: str, document: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Returns report.md."""
    systems = list(document["systems"])
    lines = [f"# Evaluation: {name}", "", "## Recommendation", "",
             *(f"- {line}" for line in recommendation_lines(document)),
             "", markdown_table(recommendation_rows(document)), "", setup_line(document), "", "## Verdict", ""]
    lines += [f"- {line}" for line in verdicts(document)] or ["- Only one system ran: nothing to compare."]
    lines += ["", "## Scores (mean [95% CI])", "", markdown_table(ci_rows(document)), "", _tokenizer_line(document), ""]
    if document.get("retrieval"):
        lines += ["## Retriever", "", _retrieval_intro(document["retrieval"]), "",
                  markdown_table(retrieval_rows(document["retrieval"])), ""]
    if document.get("questions"):
        lines += ["## Your questions", "", _questions_intro(document["questions"]), "",
                  markdown_table(questions_rows(document["questions"])), ""]
    if document["comparisons"]:
        lines += ["## Paired tests", "", markdown_table(comparison_rows(document["comparisons"])), ""]
    for lang in sorted(next(iter(document["systems"].values())).get("by_lang", {})):
        by_lang = {system: entry["by_lang"][lang] for system, entry in document["systems"].items()}
        lines += [f"## Language: {lang}", "", markdown_table(ci_rows(document, by_lang)), ""]
    lines += ["## Forgetting probe", "", *probe_lines(document.get("forgetting")), ""]
    if document.get("judge"):
        lines += ["## Judge", "", markdown_table(_judge_rows(document["judge"])), ""]
    lines += [f"## {_examples_title(document)}", ""]
    for answers in ordered_examples(rows, systems, document["recommendation"]["system"])[:EXAMPLES_SHOWN]:
        lines += _example_markdown(answers, systems)
    return "\n".join(lines)


def _questions_intro(section: dict[str, Any]) -> str:
    return (
        f"{section['n']} questions of your own ({', '.join(section['files'])}), {section['answerable']} of them with "
            "their answer in the training split, asked of every system like the test split.")


def _retrieval_intro(section: dict[str, Any]) -> str:
    return (f"BM25 over the training pairs, top {section['k']} into rag prompts, a pair close enough when it holds "
            f"{section['min_coverage']:.0%} of the question's content words (IDF-weighted). recall@k: the share of "
            "test questions with a training pair of the same answer among the first k retrieved.")


def _html_table(rows: list[list[str]], html_id: str = "") -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:])
    ident = f' id="{html_id}"' if html_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _examples_html(rows: list[dict[str, Any]], systems: list[str], first: str) -> str:
    table = [["question", "reference", *systems]]
    for answers in ordered_examples(rows, systems, first):
        head = next(iter(answers.values()))
        cells = [f"{head['question']}\n[{head['id']}, {head['lang']}]", head["reference"]]
        cells += [f"{answers[s]['prediction']}\n[{_verdict(answers[s])}]" for s in systems]
        table.append(cells)
    return _html_table(table, "examples")


# Fits a 1280 px window without horizontal scrolling: tables take the page's width and wrap anywhere.
STYLE = ("body{font-family:system-ui,'Hiragino Sans','Noto Sans JP',sans-serif;margin:1.5em;max-width:1400px}"
         "table{border-collapse:collapse;margin:1em 0;width:100%;table-layout:fixed}"
         "td,th{border:1px solid #ccc;padding:4px 6px;vertical-align:top;white-space:pre-wrap;"
         "overflow-wrap:anywhere;font-size:0.9em}th{background:#f3f3f3}img{max-width:100%}"
         ".recommendation{font-size:1.1em;background:#eef6ee;border:1px solid #9c9;padding:0.5em 1em}")


def report_html(name: str, document: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Returns report.html: one file, chart embedded as PNG, every text escaped."""
    systems = list(document["systems"])
    advice = recommendation_lines(document)
    parts = [f"<h1>Evaluation: {escape(name)}</h1>", "<h2>Recommendation</h2>",
             f'<div class="recommendation" id="recommendation"><p><b>{escape(advice[0])}</b></p><ul>',
             *(f"<li>{escape(line)}</li>" for line in advice[1:]), "</ul></div>",
             _html_table(recommendation_rows(document)),
             f"<p>{escape(setup_line(document))}</p>", "<h2>Verdict</h2><ul>",
             *(f"<li>{escape(line)}</li>" for line in verdicts(document)), "</ul>",
             f'<img alt="scores with 95% confidence intervals" src="{chart_data_uri(document)}">',
             "<h2>Scores (mean [95% CI])</h2>", _html_table(ci_rows(document)),
                 f"<p>{escape(_tokenizer_line(document))}</p>"]
    if document.get("retrieval"):
        parts += ["<h2>Retriever</h2>", f"<p>{escape(_retrieval_intro(document['retrieval']))}</p>",
                  _html_table(retrieval_rows(document["retrieval"]))]
    if document.get("questions"):
        parts += ["<h2>Your questions</h2>", f"<p>{escape(_questions_intro(document['questions']))}</p>",
                  _html_table(questions_rows(document["questions"]))]
    if document["comparisons"]:
        parts += ["<h2>Paired tests</h2>", _html_table(comparison_rows(document["comparisons"]))]
    for lang in sorted(next(iter(document["systems"].values())).get("by_lang", {})):
        by_lang = {system: entry["by_lang"][lang] for system, entry in document["systems"].items()}
        parts += [f"<h2>Language: {escape(lang)}</h2>", _html_table(ci_rows(document, by_lang))]
    probe = document.get("forgetting")
    parts.append("<h2>Forgetting probe</h2>")
    if probe:
        parts += [f"<p>{escape(probe_intro(probe))}</p>", _html_table(ci_rows(probe, probe["systems"])), "<ul>",
                  *(f"<li>{escape(line)}</li>" for line in probe_findings(probe)), "</ul>"]
    else:
        parts.append(f"<p>{escape(probe_lines(None)[0])}</p>")
    if document.get("judge"):
        parts += ["<h2>Judge</h2>", _html_table(_judge_rows(document["judge"]))]
    parts += [f"<h2>{escape(_examples_title(document))}</h2>",
              _examples_html(rows, systems, document["recommendation"]["system"])]
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Evaluation: {escape(name)}</title>'
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
