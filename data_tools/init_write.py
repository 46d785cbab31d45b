"""Writes the commented config `tunebot init` decided on, and previews the pairs it gives.

    python -c "from data_tools.init_write import init_config; init_config(['faq.csv'], 'faq.yaml')"
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

from data_tools.init_config import Finding, inspect_file

SYSTEM_PROMPT = "You are a customer-support assistant. Answer helpfully and concisely."
PREVIEW = 3


def _flow(source: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(source, default_flow_style=True, allow_unicode=True, width=10_000, sort_keys=False).strip()


def config_text(findings: list[Finding], name: str) -> str:
    """The YAML of the run config, each source with the evidence for its settings as comments."""
    pii = sum((finding.pii for finding in findings), Counter())
    lines = [
        f"# Written by `tunebot init` on {date.today().isoformat()} from {len(findings)} file(s). Each source says",
             "# why it was read this way; change what is wrong, then: tunebot run THIS_FILE",
             f"name: {name}", "model: default", f"system_prompt: {SYSTEM_PROMPT}", "data:", "  sources:"]
    for finding in findings:
        lines += [f"    # {finding.path.name}: {reason}" for reason in finding.evidence]
        if finding.pii:
            lines.append("    # personal data in a sample: " + ", ".join(f"{kind} {count}"
                    for kind, count in finding.pii.most_common()))
        lines += [f"    # NOT MAPPED: {problem}" for problem in finding.unmapped]
        lines.append(f"    - {_flow(finding.source)}")
    found = ", ".join(f"{kind} {count}" for kind, count in pii.most_common()) or "none in the samples"
    lines += [f"  pii: redact  # personal data becomes [EMAIL], [PHONE], [NAME], ... (found: {found})",
              *_ner_lines(findings), ""]
    return "\n".join(lines)


def _ner_lines(findings: list[Finding]) -> list[str]:
    """The pii_ner setting: GiNZA for Japanese text where it is installed, else how to get it."""
    from data_tools.pii_ner import ner_problem

    if not any(finding.japanese for finding in findings):
        return []
    why = ("Japanese text: GiNZA's NER also finds names without 様/さん and addresses without a prefecture"
           " (~100 texts/s)")
    if ner_problem("ginza") is None:
        return [f"  pii_ner: ginza  # {why}"]
    return [f"  # pii_ner: ginza  # {why}; needs pip install 'tunebot[ner-ja]'"]


def _shown(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(config: Path) -> list[str]:
    """Builds the pairs of the config as `tunebot data` would; returns the report lines (3 pairs a source)."""
    from data_tools.stage import built_records
    from tunebot.config import load_config

    cfg = load_config(config)
    records, rejects, reports = built_records(cfg)
    out = []
    for report in reports:
        mine = [r for r in records if r["source"].rsplit(":", 1)[0] == report["file"]]
        out.append(f"{report['file']}: {report['rows_in']} {report['unit']}s in, {report['kept']} pairs, "
                   f"{report['rejected']} rejected")
        for record in mine[:PREVIEW]:
            asked = next((m["content"] for m in reversed(record["prompt"]) if m["role"] == "user"), "")
            out += [f"  Q: {_shown(asked)}", f"  A: {_shown(record['completion'][0]['content'])}"]
        reasons = Counter(reject["reason"] for reject in rejects
                          if reject["source"].rsplit(":", 1)[0] == report["file"])
        for reason, count in reasons.most_common(3):
            hint = "  (add it to agent_roles, customer_roles or skip_roles)" if "unknown role" in reason else ""
            out.append(f"  could not use {count}: {_shown(reason, 120)}{hint}")
    return out


def default_name(paths: list[Path]) -> str:
    """A run name from the first file: its stem, lower case, letters, digits, - and _ only."""
    stem = re.sub(r"[^a-z0-9_-]+", "-", paths[0].stem.lower()).strip("-")
    return stem or "my-faq"


def init_config(files: list[str], out: str | None = None, name: str | None = None) -> tuple[Path, list[str]]:
    """Inspects `files`, writes the config (default <name>.yaml), returns its path and the preview lines."""
    from tunebot.config import parse_config

    import os

    paths = [Path(file) for file in files]
    findings = [inspect_file(path) for path in paths]
    name = name or default_name(paths)
    target = Path(out) if out else Path(f"{name}.yaml")
    for finding in findings:  # source paths are read relative to the config's folder
        finding.source["path"] = os.path.relpath(finding.path.resolve(), target.resolve().parent)
    text = config_text(findings, name)
    import yaml

    parse_config(yaml.safe_load(text))  # what is written is a valid config
    from tunebot.rundir import atomic_write_text

    atomic_write_text(target, text)
    return target, preview(target)
