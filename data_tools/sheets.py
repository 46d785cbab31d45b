"""Reads FAQ rows from an Excel workbook (.xlsx) as people lay them out: title rows, merged cells, formulas.

    python -c "from data_tools.sheets import read_xlsx; print(next(read_xlsx('faq.xlsx')))"

- The header is the first row, among the first HEADER_SCAN non-empty ones, that names a question
  column (質問, question, Q, ...); failing that, the first row with two or more filled cells. Title
  rows above it (「よくある質問一覧」 merged across the sheet) are skipped. `header_row:` sets it.
- A merged range gives its value to every cell it covers, so a category merged down ten rows
  belongs to all ten.
- Formulas give their cached values (what Excel last computed). A formula without one (a file
  written by a program, never opened in Excel) makes its row a reject naming the cell.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from data_tools.rows import ANSWER_NAMES, QUESTION_NAMES, DataError, RawRow

HEADER_SCAN = 20


def _cell_text(value: Any) -> str:
    # Excel stores 30 as 30.0 and dates as datetimes: give users back what they typed.
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)


def _open(path: Path, data_only: bool) -> Any:
    from openpyxl import load_workbook

    try:
        return load_workbook(path, data_only=data_only)
    except Exception as error:  # openpyxl raises several types for a broken or foreign file
        raise DataError(f"{path}: not a readable .xlsx workbook ({type(error).__name__}: {error})") from None


def _grid(worksheet: Any) -> list[list[Any]]:
    """The sheet's values, every merged range filled with its top-left value."""
    grid = [list(row) for row in worksheet.iter_rows(values_only=True)]
    for merged in worksheet.merged_cells.ranges:
        value = worksheet.cell(merged.min_row, merged.min_col).value
        for row in range(merged.min_row, min(merged.max_row, len(grid)) + 1):
            for column in range(merged.min_col, merged.max_col + 1):
                if column <= len(grid[row - 1]):
                    grid[row - 1][column - 1] = value
    return grid


def find_header(rows: list[list[str]], given: int | None = None) -> int:
    """The 0-based index of the header row: `given` (1-based), a row naming a question column, or the first wide row."""
    if given is not None:
        if not 1 <= given <= len(rows):
            raise DataError(f"header_row {given} is outside the sheet's {len(rows)} rows")
        return given - 1
    filled = [index for index, cells in enumerate(rows) if any(cell.strip() for cell in cells)][:HEADER_SCAN]
    names = {name.lower() for name in QUESTION_NAMES + ANSWER_NAMES}
    for index in filled:
        if sum(cell.strip().lower() in names for cell in rows[index]) >= 1 and sum(bool(c.strip())
                for c in rows[index]) >= 2:
            return index
    wide = [index for index in filled if sum(bool(cell.strip()) for cell in rows[index]) >= 2]
    if not wide:
        raise DataError("no header row found: no row of the first 20 has two filled cells (set header_row:)")
    return wide[0]


def read_xlsx(path: Path, sheet: str | None = None, header_row: int | None = None) -> Iterator[RawRow]:
    """Yields one `RawRow` per non-empty row under the header; `line` is Excel's row number.

    >>> [row.fields for row in read_xlsx(Path("faq.xlsx"), sheet="FAQ")]   # doctest: +SKIP
    [{'質問': '返品できますか？', '回答': 'はい。'}]
    """
    values_book = _open(path, data_only=True)
    if sheet is not None and sheet not in values_book.sheetnames:
        raise DataError(f"{path}: no sheet {sheet!r}; sheets are {values_book.sheetnames}")
    name = sheet if sheet is not None else values_book.sheetnames[0]
    raw = _grid(values_book[name])
    rows = [[_cell_text(value) for value in cells] for cells in raw]
    try:
        top = find_header(rows, header_row)
    except DataError as error:
        raise DataError(f"{path}: sheet {name!r}: {error}") from None
    header = [cell.strip() for cell in rows[top]]
    formulas = None
    for index in range(top + 1, len(rows)):
        cells = rows[index]
        if not any(cell.strip() for cell in cells):
            continue
        error = None
        if any(value is None for value in raw[index][: len(header)]):
            formulas = formulas or _open(path, data_only=False)[name]
            missing = [cell.coordinate for cell in formulas[index + 1][: len(header)]
                       if isinstance(cell.value, str) and cell.value.startswith("=")
                           and raw[index][cell.column - 1] is None]
            if missing:
                error = (f"formula in {', '.join(missing)} has no cached value (the file was never opened in "
                         "Excel): open and save it in Excel, or type the value")
        yield RawRow(str(path), index + 1, dict(zip(header, cells)), error)
