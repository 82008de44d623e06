"""Uploads streamed to disk: the size limit is enforced while the body arrives (nothing is kept past it), file
names are sanitised, and each file's first bytes decide whether it is accepted, file by file.

Layout under HOME/server/uploads/: `.incoming/<job_id>/` while a request is being received, then
`<collection>/<job_id>/<name>` once accepted (the document's source, so a citation can open the cited page),
or `.summaries/<job_id>/<name>` for a file to summarise (removed when its job ends).
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request

from ragqa.api.errors import PayloadTooLarge, Unprocessable, UnsupportedMedia
from ragqa.collection import MEDIA_TYPES, SUPPORTED_SUFFIXES

SNIFF_BYTES = 8192
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 1000
MAX_NAME = 120


@dataclass
class Saved:
    filename: str  # sanitised; unique in its folder
    original: str  # as the client sent it
    path: Path
    size: int
    kind: str  # pdf | text


@dataclass
class Rejected:
    filename: str
    status: int  # 415 not a PDF / unsupported type, 422 empty
    reason: str

    def to_dict(self) -> dict:
        return {"filename": self.filename, "status": self.status, "reason": self.reason}


@dataclass
class Received:
    files: list[Saved] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)


def safe_filename(name: str | None) -> str:
    """A client's file name -> a plain name: no folders, no control characters, no leading dots."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]  # '../../etc/passwd' -> 'passwd'
    name = "".join(ch if ch.isprintable() else "_" for ch in name)
    name = re.sub(r'[<>:"|?*\[\]]', "_", name)  # Windows-reserved, and glob characters
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if len(name) > MAX_NAME:
        stem, suffix = os.path.splitext(name)
        suffix = suffix if len(suffix) <= 10 else ""
        name = stem[: MAX_NAME - len(suffix)] + suffix
    return name or "upload"


def sniff(head: bytes, filename: str, size: int, declared: str = "") -> tuple[str, str | None, Rejected | None]:
    """(name, kind, None) for a file we can ingest; (name, None, Rejected) with the reason otherwise. A name
    without a known suffix takes the suffix of the part's declared Content-Type (`report` sent as
    application/pdf is saved as `report.pdf`); the first bytes decide, whatever the name says."""
    suffix = os.path.splitext(filename)[1].lower()
    if suffix not in SUPPORTED_SUFFIXES:
        by_type = MEDIA_TYPES.get(declared.split(";")[0].strip().lower())
        if by_type is None and b"%PDF-" in head[:1024]:
            by_type = ".pdf"
        if by_type is not None:
            filename, suffix = filename + by_type, by_type
    if size == 0:
        return filename, None, Rejected(filename, 422, "empty file (0 bytes)")
    if b"%PDF-" in head[:1024]:
        return filename, "pdf", None
    if suffix == ".pdf":
        return filename, None, Rejected(filename, 415, "not a PDF: no %PDF- header in its first bytes")
    if suffix in SUPPORTED_SUFFIXES:
        if b"\x00" in head:
            return filename, None, Rejected(filename, 415, f"not text: a {suffix} file with binary content")
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return filename, None, Rejected(filename, 415, f"not UTF-8 text: a {suffix} file must be UTF-8")
        return filename, "text", None
    supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
    types = ", ".join(MEDIA_TYPES)
    return filename, None, Rejected(filename, 415, f"unsupported file type '{suffix or filename}' (supported: "
                                                   f"{supported}; or send the file as one of {types})")


def _unique(folder: Path, name: str) -> str:
    stem, suffix = os.path.splitext(name)
    candidate, n = name, 1
    while (folder / candidate).exists():
        n += 1
        candidate = f"{stem} ({n}){suffix}"
    return candidate


class UploadArea:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        # a request cut off by a crash leaves its .incoming folder behind; nothing there is referenced
        shutil.rmtree(root / ".incoming", ignore_errors=True)

    def incoming(self, job_id: str) -> Path:
        return self.root / ".incoming" / job_id

    def accept(self, job_id: str, area: str) -> Path:
        """Move a received request's files to their home; returns the new folder."""
        target = self.root / area / job_id
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.incoming(job_id), target)
        return target

    def owns(self, path: str | Path) -> bool:
        try:
            Path(path).resolve().relative_to(self.root.resolve())
            return True
        except ValueError:
            return False

    def remove(self, path: str | Path) -> None:
        """Delete an uploaded file (only ours), and its job folder once empty."""
        path = Path(path)
        if not self.owns(path):
            return
        path.unlink(missing_ok=True)
        try:
            path.parent.rmdir()
        except OSError:
            pass

    def discard(self, folder: Path) -> None:
        if self.owns(folder):
            shutil.rmtree(folder, ignore_errors=True)


async def receive(request: Request, dest: Path, *, max_bytes: int, file_fields: tuple[str, ...]) -> Received:
    """Parse a multipart body as it streams in, writing files under `dest`. Raises 413 past `max_bytes` (after
    removing everything written), 415 for a body that is not multipart/form-data, 422 for a malformed one."""
    ctype, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise UnsupportedMedia("send multipart/form-data with the files in the form field "
                               f"'{file_fields[0]}'")
    limit_mb = max_bytes / 2**20
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"upload of {int(declared) / 2**20:.1f} MB is over the {limit_mb:.0f} MB limit")
    dest.mkdir(parents=True, exist_ok=True)
    state = _PartState(dest, file_fields)
    parser = MultipartParser(boundary, callbacks=state.callbacks())
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > max_bytes:
                raise PayloadTooLarge(f"upload is over the {limit_mb:.0f} MB limit; nothing was kept")
            parser.write(chunk)
        parser.finalize()
        if not state.done:
            raise Unprocessable("malformed multipart body: it ended before its closing boundary")
    except MultipartParseError as e:
        shutil.rmtree(dest, ignore_errors=True)
        raise Unprocessable(f"malformed multipart body: {e}") from e
    except ClientDisconnect:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise
    finally:
        state.close()
    return state.received


class _PartState:
    """The parser's callbacks: headers of each part, then its data to a file (or a small field value)."""

    def __init__(self, dest: Path, file_fields: tuple[str, ...]):
        self.dest, self.file_fields = dest, file_fields
        self.received = Received()
        self.done = False
        self.parts = 0
        self._reset()

    def _reset(self) -> None:
        self.headers: dict[str, bytes] = {}
        self._hname = bytearray()
        self._hvalue = bytearray()
        self.name: str | None = None
        self.filename: str | None = None
        self.fh = None
        self.tmp: Path | None = None
        self.size = 0
        self.head = bytearray()
        self.value = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self._part_begin, "on_header_field": self._hfield, "on_header_value": self._hval,
                "on_header_end": self._hend, "on_headers_finished": self._headers_done, "on_part_data": self._data,
                "on_part_end": self._part_end, "on_end": self._end}

    def _part_begin(self) -> None:
        self._reset()
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise Unprocessable(f"too many parts in one request (at most {MAX_PARTS})")

    def _hfield(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def _hval(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def _hend(self) -> None:
        self.headers[self._hname.decode("latin-1").lower()] = bytes(self._hvalue)
        self._hname, self._hvalue = bytearray(), bytearray()

    def _headers_done(self) -> None:
        # raw bytes: the parser reads them as latin-1 and gives the same bytes back; browsers send UTF-8 names
        _, options = parse_options_header(self.headers.get("content-disposition", b""))
        self.name = options.get(b"name", b"").decode("utf-8", "replace") or None
        raw = options.get(b"filename")
        # a part in a file field is a file even without a filename (curl and browsers send one; not every client)
        if raw is not None or self.name in self.file_fields:
            self.filename = raw.decode("utf-8", "replace") if raw is not None else None
            self.tmp = self.dest / f".part-{self.parts}"
            self.fh = open(self.tmp, "wb")

    def _data(self, data: bytes, start: int, end: int) -> None:
        piece = data[start:end]
        if self.fh is not None:
            self.fh.write(piece)
            self.size += len(piece)
            if len(self.head) < SNIFF_BYTES:
                self.head += piece[: SNIFF_BYTES - len(self.head)]
        else:
            self.value += piece
            if len(self.value) > MAX_FIELD_BYTES:
                raise Unprocessable(f"form field '{self.name}' is over {MAX_FIELD_BYTES // 1024} KB")

    def _part_end(self) -> None:
        if self.fh is None:
            if self.name:
                self.received.fields[self.name] = self.value.decode("utf-8", "replace")
            return
        self.fh.close()
        self.fh = None
        name = safe_filename(self.filename)
        declared = self.headers.get("content-type", b"").decode("latin-1")
        if self.name not in self.file_fields:
            self.tmp.unlink(missing_ok=True)
            self.received.rejected.append(Rejected(name, 422, f"file in an unknown form field '{self.name}'; "
                                                              f"use '{self.file_fields[0]}'"))
            return
        name, kind, rejected = sniff(bytes(self.head), name, self.size, declared)
        if rejected is not None:
            self.tmp.unlink(missing_ok=True)
            self.received.rejected.append(rejected)
            return
        final = _unique(self.dest, name)
        os.replace(self.tmp, self.dest / final)
        self.received.files.append(Saved(final, self.filename or "", self.dest / final, self.size, kind))

    def _end(self) -> None:
        self.done = True

    def close(self) -> None:
        if self.fh is not None:
            self.fh.close()
            self.fh = None
