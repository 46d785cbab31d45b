"""Size of the data stage's code: lines of code per module of data_tools/, format readers apart.

    .venv/bin/python bench/code_size.py                  # this checkout
    .venv/bin/python bench/code_size.py --rev 8a8ca01    # any commit, read with git show

A line of code is what cloc counts as code: not blank, not a comment, not in a docstring (on this
tree the two counts are equal). That is the count closest to issue 19's figures ("3,035 lines,
about 2,350 without the format readers"): 2,966 for the commit it was filed at, where `wc -l`
gives 4,372. The format readers are the modules that turn a file's bytes into rows or
conversations (READERS). The table also names the longest module (physical lines; the issue's
limit is 300). Import circles are a test of their own (tests/test_imports.py).
"""

from __future__ import annotations

import argparse
import ast
import io
import json
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READERS = ("readers", "conversations", "helpdesk", "transcripts", "markdown", "sheets", "html_text", "jsonio", "rows",
           "roles", "logs")  # logs: the old engine's support-log reader
TARGET = 1500
MAX_MODULE_LINES = 300


def code_lines(text: str) -> int:
    """Returns the lines of Python source that are neither blank, a comment nor part of a docstring."""
    lines = text.splitlines()
    skipped = {number for number, line in enumerate(lines, 1) if not line.strip()}
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT and lines[token.start[0] - 1].lstrip().startswith("#"):
            skipped.add(token.start[0])
    for node in ast.walk(ast.parse(text)):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body:
            first = body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value,
                                                                                                   str):
                skipped.update(range(first.lineno, first.end_lineno + 1))
    return len(lines) - len(skipped)


def sources(rev: str | None) -> dict[str, str]:
    """Returns data_tools' top-level modules by name: the working tree's, or those of commit `rev`."""
    if rev is None:
        return {path.stem: path.read_text(encoding="utf-8") for path in sorted((ROOT / "data_tools").glob("*.py"))}
    names = subprocess.run(["git", "ls-tree", "--name-only", rev, "data_tools/"], cwd=ROOT, check=True,
                           capture_output=True, text=True).stdout.split()
    return {Path(name).stem: subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, check=True, capture_output=True,
                                            text=True).stdout for name in sorted(names) if name.endswith(".py")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", help="a commit to count instead of the working tree")
    parser.add_argument("--quick", action="store_true", help="the same count (it takes a second)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    modules = sources(args.rev)
    counts = {name: code_lines(text) for name, text in modules.items()}
    readers = {name: count for name, count in counts.items() if name in READERS}
    rest = {name: count for name, count in counts.items() if name not in READERS}
    print(f"{'module':<16} {'code':>5} {'lines':>6}  kind")
    for group, members in (("reader", readers), ("other", rest)):
        for name, count in sorted(members.items(), key=lambda item: -item[1]):
            print(f"{name:<16} {count:>5} {len(modules[name].splitlines()):>6}  {group}")
    total, stage = sum(counts.values()), sum(rest.values())
    print(f"data_tools: {total:,} lines of code, format readers {sum(readers.values()):,}, the rest {stage:,} "
          f"(target < {TARGET:,}: {'PASS' if stage < TARGET else 'FAIL'})")
    longest = max(modules, key=lambda name: len(modules[name].splitlines()))
    print(f"longest module: {longest} ({len(modules[longest].splitlines())} lines; target <= {MAX_MODULE_LINES})")
    if args.json:
        figures = {"rev": args.rev or "working tree", "code_lines": counts, "readers": sorted(readers),
                   "total": total, "without_readers": stage, "target": TARGET}
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
