"""Files as items: CSV and JSON Lines readers, a byte that is not UTF-8 reported on its
line, the file's opening and format."""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import json
import os
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal

from .items import (
    ANNOTATION_FIELDS,
    FIELDS,
    NON_FIELD,
    REQUIRED_FIELDS,
    ItemResult,
    JsonText,
    error_result,
    reject_constant,
)


class SourceError(Exception):
    """The file as a whole cannot be read (bad header, unknown format)."""


#: A byte that is not UTF-8, as ``open_text``'s ``surrogateescape`` decoding gives it.
_UNDECODED = re.compile("[\udc80-\udcff]")
_CHUNK_CHARS = 1 << 16


class TextLines:
    """The lines of a stream from ``open_text``, noting each line that holds bytes that
    are not UTF-8 (``bad``: line number → its first such byte), for the reader to report
    the record instead of reading it.

    ``open_text`` decodes with ``surrogateescape``: each byte that is not UTF-8 arrives
    as a lone surrogate (U+DC80–U+DCFF) and every ASCII byte as itself, so lines and
    CSV quoting split exactly as in the bytes. Lines are checked a chunk at a time: an
    ASCII chunk, the common case, in constant time; another by encoding it back, and
    only a chunk that holds such a byte line by line.
    """

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream
        self.bad: dict[int, int] = {}

    def __iter__(self) -> Iterator[str]:
        return itertools.chain.from_iterable(self._chunks())

    def _chunks(self) -> Iterator[list[str]]:
        readlines = self.stream.readlines
        search = _UNDECODED.search
        number = 0
        while lines := self._read(readlines, number):
            chunk = "".join(lines)
            if not chunk.isascii():
                try:
                    chunk.encode()  # refuses surrogates; a sixth of a search's time
                except UnicodeEncodeError:
                    for offset, line in enumerate(lines, start=number + 1):
                        if found := search(line):
                            self.bad[offset] = ord(found.group()) - 0xDC00
            number += len(lines)
            yield lines

    @staticmethod
    def _read(readlines, number: int) -> list[str]:
        try:
            return readlines(_CHUNK_CHARS)
        except (OSError, EOFError, zlib.error) as exc:  # a damaged .gz, a failing disk
            after = f" after line {number}" if number else ""
            raise SourceError(f"Cannot read the file{after}: {exc}.") from exc

    def take(self, last: int) -> tuple[int, int] | None:
        """Forget the bad lines up to ``last``; → the first of them and its byte."""
        first = None
        for number in [n for n in self.bad if n <= last]:
            byte = self.bad.pop(number)
            if first is None:
                first = (number, byte)
        return first


def undecodable_result(index: int, bad_line: int, byte: int, raw: object = None) -> ItemResult:
    where = "" if bad_line == index else f" on line {bad_line}"
    problem = f"Not valid UTF-8: byte 0x{byte:02X}{where}."
    return error_result(index, {NON_FIELD: [problem]}, raw=raw)


def _floats(node):
    if isinstance(node, Decimal):
        return float(node)
    if isinstance(node, dict):
        return {k: _floats(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_floats(v) for v in node]
    return node


class CsvRows:
    """``(line number, item)`` per CSV record; an empty cell means "not given".

    The header names the columns (any order); unknown columns are an error for the whole
    file, ``_line``/``_error`` (written by ``--errors-out``) are ignored.

    Iterating gives items (dicts). ``records()`` gives the same rows undigested, as tuples
    of cells in ``FIELDS`` order (``""`` where not given), for a caller that validates
    cells directly (``RowValidator.fast_cells``) and builds an item with ``item()`` only
    for a row it must report or send down the full path.
    """

    def __init__(self, stream: io.TextIOBase):
        self.stream = stream

    def __iter__(self) -> Iterator[tuple[int, object]]:
        item = self.item
        for line, record in self.records():
            yield line, record if record.__class__ is ItemResult else item(record)

    @staticmethod
    def item(cells: Sequence[str]) -> dict:
        """Cells in ``FIELDS`` order → the item a JSON caller would have sent."""
        item = {name: cell for name, cell in zip(FIELDS, cells, strict=True) if cell != ""}
        if "_metadata" in item:
            item["_metadata"] = JsonText(item["_metadata"])
        return item

    def records(self) -> Iterator[tuple[int, tuple[str, ...] | ItemResult]]:
        lines = TextLines(self.stream)
        bad = lines.bad
        reader = csv.reader(lines)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            return
        except csv.Error as exc:
            raise SourceError(f"The header is not valid CSV: {exc}.") from exc
        if bad and (found := lines.take(reader.line_num)):
            raise SourceError(
                f"line {found[0]}: the header is not valid UTF-8: byte 0x{found[1]:02X}."
            )
        unknown = [n for n in header if n not in FIELDS and n not in ANNOTATION_FIELDS]
        if unknown:
            raise SourceError(
                f"Unknown column(s) {', '.join(unknown)}; the columns are {', '.join(FIELDS)}."
            )
        missing = [n for n in REQUIRED_FIELDS if n not in header]
        if missing:
            raise SourceError(f"Missing required column(s): {', '.join(missing)}.")
        if len(set(header)) != len(header):
            raise SourceError("A column appears twice in the header.")
        width = len(header)
        # A column the header lacks reads the empty cell appended to every record.
        positions = [header.index(n) if n in header else width for n in FIELDS]
        in_order = positions == list(range(len(FIELDS))) and width == len(FIELDS)
        line = reader.line_num
        while True:
            try:
                for record in reader:
                    start, line = line + 1, reader.line_num
                    if bad and (found := lines.take(line)):
                        raw = None
                        if len(record) == width:
                            record.append("")
                            raw = self.item([record[i] for i in positions])
                        yield start, undecodable_result(start, *found, raw=raw)
                        continue
                    if not record:
                        continue
                    if len(record) != width:
                        problem = f"Expected {width} columns, found {len(record)}."
                        yield start, error_result(start, {NON_FIELD: [problem]})
                        continue
                    if not in_order:
                        record.append("")
                        record = [record[i] for i in positions]
                    # A tuple of strings: the cyclic collector stops tracking it, and a
                    # batch of them costs its collections nothing.
                    yield start, tuple(record)
                return
            except csv.Error as exc:  # a field over the size limit: its record only
                start, line = line + 1, reader.line_num
                lines.take(line)
                yield start, error_result(start, {NON_FIELD: [f"Not valid CSV: {exc}."]})


def csv_rows(stream: io.TextIOBase) -> CsvRows:
    return CsvRows(stream)


def jsonl_rows(stream: io.TextIOBase) -> Iterator[tuple[int, object]]:
    """``(line number, item)`` per JSON Lines object; blank lines are skipped. Numbers with
    a fraction parse exactly (``Decimal``), as in the API."""
    lines = TextLines(stream)
    bad = lines.bad
    for number, line in enumerate(lines, start=1):
        if bad and number in bad:
            try:
                raw = _json_item(line)
            except ValueError:
                raw = None
            yield number, undecodable_result(number, number, bad.pop(number), raw=raw)
            continue
        if not line.strip():
            continue
        try:
            item = _json_item(line)
        except ValueError as exc:
            yield number, error_result(number, {NON_FIELD: [f"Not valid JSON: {exc}."]})
            continue
        yield number, item


def _json_item(line: str) -> object:
    item = json.loads(line, parse_float=Decimal, parse_constant=reject_constant)
    if isinstance(item, dict) and isinstance(item.get("_metadata"), dict | list):
        item["_metadata"] = _floats(item["_metadata"])
    return item


def open_text(path: str, stdin=None) -> tuple[io.TextIOBase, Callable[[], int], int | None]:
    """A text stream for ``path`` (``-`` = stdin; ``.gz`` decompressed), a function that
    tells how many bytes were consumed so far, and the total (None when unknown)."""

    # A byte that is not UTF-8 fails its line, not the file (``TextLines``).
    decoding = {"encoding": "utf-8-sig", "errors": "surrogateescape", "newline": ""}
    if path == "-":
        stdin = stdin or sys.stdin
        if hasattr(stdin, "buffer"):
            stdin = io.TextIOWrapper(stdin.buffer, **decoding)
        return stdin, lambda: 0, None
    binary = open(path, "rb")  # noqa: SIM115 - closed with the text wrapper by the caller
    total = os.fstat(binary.fileno()).st_size
    source = gzip.GzipFile(fileobj=binary) if path.endswith(".gz") else binary
    text = io.TextIOWrapper(source, **decoding)
    return text, binary.tell, total


def detect_format(path: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise SourceError(
        f"Cannot tell the format of {path!r} from its name; use --format csv or jsonl."
    )


def item_rows(path_format: str, stream: io.TextIOBase) -> Iterable[tuple[int, object]]:
    return csv_rows(stream) if path_format == "csv" else jsonl_rows(stream)
