"""FAQ rows (question/answer columns) -> candidates or rejects.

    python -c "from tunebot.config import parse_config; from data_tools.build import build_records; print(build_records(parse_config({'name': 'x', 'data': {'sources': [{'path': 'examples/data/acme_faq_en.jsonl'}]}}).data, 'S')[0][0])"
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from data_tools.normalize import clean_text
from data_tools.readers import RawRow
from tunebot.config import SourceConfig

if TYPE_CHECKING:
    from data_tools.build import Candidate, RecordBuilder


def faq_units(builder: RecordBuilder, source: SourceConfig, path: Path, file_index: int) -> Iterator[Candidate | dict[str, Any]]:
    """Yields one candidate or reject per row of an FAQ file."""
    from data_tools.build import columns_of, rows_of

    columns: tuple[str, str, str | None] | None = None
    for row in rows_of(source, path):
        if row.error:
            yield builder.reject(row.source, row.error, None, row.fields)
            continue
        columns = columns or columns_of(source, path, row)
        yield _unit(builder, row, columns, file_index)


def _unit(builder: RecordBuilder, row: RawRow, columns: tuple[str, str, str | None], file_index: int) -> Candidate | dict[str, Any]:
    for name in columns[:2]:
        if name not in row.fields:
            return builder.reject(row.source, f"missing field {name!r}", name, row.fields)
    report = builder.reports[file_index]
    question = builder.cleaner.field(row.fields[columns[0]])
    answer = builder.cleaner.answer(row.fields[columns[1]])
    question, in_question = builder.redact(question, report)
    answer, in_answer = builder.redact(answer, report)
    found = in_question + in_answer
    if found and builder.cfg.pii == "drop":
        return builder.reject(row.source, f"contains personal data ({', '.join(sorted(found))})", None, row.fields)
    problem = builder.check(question, answer, row.source)
    if problem:
        return builder.reject(row.source, problem[0], problem[1], row.fields)
    record_id = f"{builder.prefixes[file_index]}-{row.line:05d}"
    candidate = builder.candidate(record_id, row.source, [{"role": "user", "content": question}], answer, file_index)
    category = clean_text(row.fields.get(columns[2])) if columns[2] else ""
    if category:
        candidate.record["category"] = candidate.category = category
    return candidate
