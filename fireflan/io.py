"""Reading and writing the kit's files, with errors that name the file, the line and the field.

Every artifact is JSONL (one JSON object a line) that `datasets.load_dataset("json", ...)` reads.
Readers never skip a bad line silently: they raise `DataError` saying where it is.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path


class DataError(ValueError):
    """Bad input: the message names the file, the line (or record) and the field."""

    def __init__(self, path, message: str, line: int | None = None, field: str | None = None):
        where = str(path) + (f":{line}" if line is not None else "")
        what = f"field '{field}': " if field is not None else ""
        super().__init__(f"{where}: {what}{message}")
        self.path, self.line, self.field = str(path), line, field


class ServiceError(RuntimeError):
    """A server the run depends on (a teacher's API) refused or did not answer; the message names its URL."""


def _existing(path) -> Path:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "no such file")
    return whole(path.parent) and path


INCOMPLETE = ".incomplete"


@contextlib.contextmanager
def file_set(folder, what: str):
    """The files written in the block belong together (a world's splits and articles, a corpus's train and
    validation records): FOLDER/.incomplete stands while they are written, so a run stopped half-way leaves
    a set that every reader refuses by name (`whole`), never a silent mix of two runs' files."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / INCOMPLETE
    marker.write_text(f"`{what}` (process {os.getpid()})\n")
    yield folder
    marker.unlink()


def whole(folder) -> Path:
    """FOLDER, or a DataError when a `file_set` writing into it stopped before it finished."""
    marker = Path(folder) / INCOMPLETE
    if marker.exists():
        raise DataError(folder, f"{marker.read_text().strip()} stopped while writing these files, so they may "
                                f"mix two runs; run it again to finish them")
    return Path(folder)


def iter_jsonl(path) -> Iterator[tuple[int, dict]]:
    """Yield (line number, object) for each non-blank line of a JSONL file."""
    path = _existing(path)
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            line = _text(raw, path, n)
            if not line.strip():
                continue
            yield n, _object(line, path, n)


def _text(raw: bytes, path, line: int | None = None) -> str:
    """UTF-8 text (a leading byte-order mark dropped), or a DataError naming the file and line."""
    try:
        return raw.decode("utf-8-sig" if line in (None, 1) else "utf-8")
    except UnicodeDecodeError as e:
        bad = f"byte {e.start} of the line is {raw[e.start]:#04x}"
        raise DataError(path, f"not UTF-8 text ({bad})", line=line) from None


def _object(line: str, path, n: int) -> dict:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e.msg}, column {e.colno})", line=n) from None
    if not isinstance(obj, dict):
        raise DataError(path, f"expected a JSON object, got {type(obj).__name__}", line=n)
    return obj


def read_json(path):
    """Read a whole JSON file (e.g. an official HotpotQA split)."""
    path = _existing(path)
    text = _text(path.read_bytes(), path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, f"not valid JSON ({e.msg}, column {e.colno})", line=e.lineno) from None


def read_records(path) -> Iterator[tuple[str, dict]]:
    """Yield (n, object) for a .jsonl file (n: line number) or a .json list (n: record number)."""
    path = _existing(path)
    if path.suffix == ".jsonl":
        for n, obj in iter_jsonl(path):
            yield n, obj
        return
    data = read_json(path)
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(path, "expected a JSON list of records (or a .jsonl file)")
    for i, obj in enumerate(data, start=1):
        if not isinstance(obj, dict):
            raise DataError(path, f"record {i} is not a JSON object")
        yield i, obj


def require(obj: dict, field: str, types, path, line) -> object:
    """obj[field], checked for presence and type; a DataError naming file, line and field if not."""
    if field not in obj:
        raise DataError(path, "missing", line=line, field=field)
    value = obj[field]
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else "/".join(t.__name__ for t in types)
        raise DataError(path, f"expected {names}, got {type(value).__name__}", line=line, field=field)
    return value


def write_jsonl(path, records: Iterable[dict]) -> int:
    """Write records atomically (to a temporary file, then renamed); returns the count."""
    return _atomically(path, lambda f: sum(f.write(json.dumps(rec, ensure_ascii=False) + "\n") > 0 for rec in records))


def write_json(path, value, **dumps) -> None:
    """Write one JSON document atomically: a reader (or the next run, after a kill) sees the old file
    whole or the new one whole, never half of one. The stages' "finished" summaries are written so."""
    _atomically(path, lambda f: f.write(json.dumps(value, indent=2, **dumps) + "\n"))


def _atomically(path, write):
    """write(f) into this writer's own temporary file beside `path`, then one rename over it; on any
    failure (a full disk, a bad record, a kill signal turned exception) the old file stays."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    name = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with name.open("x", encoding="utf-8") as f:
            result = write(f)
        os.replace(name, path)
    except BaseException:
        name.unlink(missing_ok=True)
        raise
    return result


def resumable_records(path) -> list[dict]:
    """The records of a file that `append_jsonl` writes (none if it does not exist yet). A last line
    torn by a kill is cut off the file, so appending goes on from the last whole record."""
    path = Path(path)
    if not path.exists():
        return []
    records, good = [], 0
    with path.open("rb") as f:
        for n, raw in enumerate(f, start=1):
            try:
                records.append(_object(_text(raw, path, n), path, n))
            except DataError:
                if not raw.endswith(b"\n"):  # the last line, torn by a kill
                    break
                raise
            good += len(raw)
    if good < path.stat().st_size:
        with path.open("r+b") as f:
            f.truncate(good)
    return records


def append_jsonl(path, record: dict) -> None:
    """Append one record and flush it to disk: the unit of resumable work."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
