"""Run history: the runs under a runs folder with what each was and how it scored, and two runs compared.

    tunebot runs runs/                       # one line a run, the best one named
    tunebot runs runs/ --compare acme-demo acme-lr2

Read only from the documented files of each run directory (config.yaml, */DONE, data/report.json,
eval/scores.json), so it works on runs of any age and never loads a model. "Right" is the
recommended system's answer_match (the share of test questions it answered with the right FAQ
answer), with its 95% CI. Runs whose data fingerprint differs were scored on different test sets:
their numbers are not a like-for-like comparison, and the table says so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tunebot.errors import TunebotError
from tunebot.rundir import RunDir, read_json

_NOT_SETTINGS = ("name", "runs_dir")  # where a run lives, not what it is


@dataclass
class RunSummary:
    """One run directory, as `tunebot runs` lists it."""

    name: str
    path: Path
    config: dict[str, Any]
    finished: str = ""
    stages: list[str] = field(default_factory=list)
    method: str = "-"  # as trained (sft/DONE), `auto` resolved
    data_fingerprint: str = ""
    records: dict[str, int] = field(default_factory=dict)
    scores: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """A short hash of every setting (not the name or folder): equal for runs made the same way."""
        return settings_fingerprint(self.config)

    @property
    def recommended(self) -> str | None:
        """The system the run's report says to ship, or None before eval."""
        return (self.scores.get("recommendation") or {}).get("system")

    def right(self, system: str | None = None) -> dict[str, float] | None:
        """answer_match of `system` (default: the recommended one): {mean, ci_low, ci_high, n}, or None."""
        entry = (self.scores.get("systems") or {}).get(system or self.recommended or "", {})
        return (entry.get("metrics") or {}).get("answer_match")


def settings_fingerprint(config: dict[str, Any]) -> str:
    """A short hash of a resolved config's settings, without its name and runs folder."""
    settings = {key: value for key, value in config.items() if key not in _NOT_SETTINGS}
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:12]



def summarize(root: Path) -> RunSummary | None:
    """Reads one run directory; None when it holds no config.yaml (not a run)."""
    try:
        config = yaml.safe_load((root / "config.yaml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return None
    run = RunDir(root)
    done = {stage: run.done_info(stage) for stage in ("data", "sft", "eval", "merged") if run.is_done(stage)}
    report = read_json(root / "data" / "report.json") if "data" in done else {}
    records = {"kept": report.get("kept", 0), **report.get("splits", {})} if report else {}
    return RunSummary(name=str(config.get("name") or root.name), path=root, config=config,
                      finished=max((info.get("finished_at", "") for info in done.values()), default=""),
                      stages=list(done), data_fingerprint=done.get("data", {}).get("fingerprint", ""),
                      records=records, method=str(done.get("sft", {}).get("method", "-")),
                      scores=read_json(root / "eval" / "scores.json") if "eval" in done else {})


def list_runs(runs_dir: Path) -> list[RunSummary]:
    """Every run directly under `runs_dir`, oldest first."""
    if not runs_dir.is_dir():
        raise TunebotError(f"{runs_dir}: no such runs folder (runs are written to runs_dir/NAME)")
    found = [summary for child in sorted(runs_dir.iterdir()) if child.is_dir() and (summary := summarize(child))]
    return sorted(found, key=lambda summary: (summary.finished, summary.name))


def _right_text(right: dict[str, float] | None) -> str:
    return "-" if right is None else f"{right['mean']:.1f} [{right['ci_low']:.1f}, {right['ci_high']:.1f}]"


def best_run(summaries: list[RunSummary]) -> RunSummary | None:
    """The evaluated run whose recommended system answers right most often (ties: the later run)."""
    scored = [summary for summary in summaries if summary.right() is not None]
    return max(scored, key=lambda summary: (summary.right()["mean"], summary.finished), default=None)


def runs_table(summaries: list[RunSummary]) -> str:
    """The table `tunebot runs` prints: one line a run, then the best run and a caveat where data differ."""
    lines = [f"{'run':<24} {'finished':<25} {'config':<12} {'model':<18} {'method':<6} {'records':>7} "
             f"{'train/val/test':<15} {'ship':<10} right (answer_match, 95% CI)"]
    for summary in summaries:
        records = summary.records
        splits = "/".join(str(records.get(name, "-")) for name in ("train", "val", "test")) if records else "-"
        model = str(summary.config.get("model", "-"))
        lines.append(f"{summary.name[:24]:<24} {summary.finished or 'not finished':<25} {summary.fingerprint:<12} "
                     f"{(model if len(model) <= 18 else '…' + model[-17:]):<18} {summary.method:<6} "
                     f"{records.get('kept', '-'):>7} {splits:<15} {summary.recommended or '-':<10} "
                     f"{_right_text(summary.right())}")
    best = best_run(summaries)
    if best is not None:
        top = [summary.name for summary in summaries if summary.right() is not None
               and summary.right()["mean"] == best.right()["mean"]]
        lines.append(f"best: {best.name} ({best.recommended}, right {best.right()['mean']:.1f})" if len(top) == 1 else
                     f"best: no run stands out ({', '.join(top)} all at right {best.right()['mean']:.1f})")
        if len({summary.data_fingerprint for summary in summaries if summary.right() is not None}) > 1:
            lines.append("note: these runs were built from different data or splits, so they were scored on "
                         "different test sets; compare like with like (tunebot runs --compare A B says which)")
    return "\n".join(lines)


def find_run(runs_dir: Path, name_or_path: str) -> RunSummary:
    """A run by its folder name under `runs_dir`, or by its path."""
    for candidate in (Path(name_or_path), runs_dir / name_or_path):
        if candidate.is_dir() and (summary := summarize(candidate)):
            return summary
    raise TunebotError(f"{name_or_path}: no run of that name in {runs_dir}, and no run directory at that path")


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        return {key: leaf for name, item in value.items() for key, leaf in _flat(item, f"{prefix}{name}.").items()}
    return {prefix.rstrip("."): json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, list)
            else value}


def _metric_rows(a: RunSummary, b: RunSummary) -> list[str]:
    systems_a, systems_b = a.scores.get("systems") or {}, b.scores.get("systems") or {}
    rows = []
    for system in [name for name in systems_a if name in systems_b]:
        metrics_a, metrics_b = systems_a[system].get("metrics", {}), systems_b[system].get("metrics", {})
        for metric in [name for name in metrics_a if name in metrics_b]:
            left, right = metrics_a[metric]["mean"], metrics_b[metric]["mean"]
            rows.append(f"  {system:<10} {metric:<18} {left:>7.1f} {right:>7.1f} {right - left:>+7.1f}")
    return rows


def compare_runs(a: RunSummary, b: RunSummary) -> str:
    """What `tunebot runs --compare A B` prints: the settings that differ, the data, the scores side by side."""
    lines = [f"A: {a.name} ({a.path}), config {a.fingerprint}", f"B: {b.name} ({b.path}), config {b.fingerprint}",
             "settings that differ (A -> B):"]
    flat_a, flat_b = _flat(a.config), _flat(b.config)
    changed = [key for key in sorted(flat_a.keys() | flat_b.keys())
               if key.split(".")[0] not in _NOT_SETTINGS and flat_a.get(key) != flat_b.get(key)]
    lines += [f"  {key}: {flat_a.get(key, '(unset)')} -> {flat_b.get(key, '(unset)')}" for key in changed] or ["  none"]
    if a.data_fingerprint and a.data_fingerprint == b.data_fingerprint:
        lines.append(
            f"data: the same records and splits (data fingerprint {a.data_fingerprint}): a like-for-like comparison")
    else:
        lines.append(f"data: different records or splits (A {a.records or '-'}, B {b.records or '-'}): the scores "
                     "below come from different test sets")
    lines.append(f"ship: A {a.recommended or '-'} (right {_right_text(a.right())}), "
                 f"B {b.recommended or '-'} (right {_right_text(b.right())})")
    rows = _metric_rows(a, b)
    if rows:
        lines += [f"  {'system':<10} {'metric':<18} {'A':>7} {'B':>7} {'B-A':>7}", *rows]
    return "\n".join(lines)
