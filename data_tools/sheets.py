"""Reads FAQ rows from an Excel workbook (.xlsx): the first sheet or a named one, header on top.

    python -c "from data_tools.sheets import read_xlsx; print(next(read_xlsx('faq.xlsx')))"
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_tools.readers import DataError, RawRow


def _cell_text(value: Any) -> str:
    # Excel stores 30 as 30.0 and dates as datetimes: give users back what they typed.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def read_xlsx(path: Path, sheet: str | None = None) -> Iterator[RawRow]:
    """Yields one `RawRow` per non-empty row under the header; `line` is Excel's row number.

    >>> [row.fields for row in read_xlsx(Path("faq.xlsx"), sheet="FAQ")]   # doctest: +SKIP
    [{'質問': '返品できますか？', '回答': 'はい。'}]
    """
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises several types for a broken or foreign file
        raise DataError(f"{path}: not a readable .xlsx workbook ({type(error).__name__}: {error})") from None
    try:
        if sheet is not None and sheet not in workbook.sheetnames:
            raise DataError(f"{path}: no sheet {sheet!r}; sheets are {workbook.sheetnames}")
        worksheet = workbook[sheet] if sheet is not None else workbook.worksheets[0]
        header: list[str] | None = None
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            cells = [_cell_text(value) for value in values]
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = [cell.strip() for cell in cells]
                continue
            yield RawRow(str(path), number, dict(zip(header, cells)))
    finally:
        workbook.close()
