"""File -> Document with pages. The format is chosen by the file's first bytes, not its name."""

from __future__ import annotations

import glob
import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

from ragqa.errors import LoadError
from ragqa.load.normalize import normalize, resolve_line_hyphens
from ragqa.load.pdf import load_pdf
from ragqa.load.text import load_text
from ragqa.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text", ".rst"}
SUPPORTED_SUFFIXES = {".pdf", *TEXT_SUFFIXES}
# The media type each kind of file is uploaded as, and the suffix a file sent as that type is saved with: an
# upload named without a known suffix is read by its declared Content-Type (the API's schema lists these).
MEDIA_TYPES = {"application/pdf": ".pdf", "text/plain": ".txt", "text/markdown": ".md", "text/x-rst": ".rst"}

__all__ = ["load", "file_sha256", "expand_paths", "SUPPORTED_SUFFIXES", "MEDIA_TYPES", "normalize"]


def file_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(path: Path, *, password: str | None = None, max_mb: int = 200, max_pages: int = 5000,
         pause: Callable[[], object] | None = None) -> Document:
    """Read one file; raises LoadError with a user-facing reason, never anything else for bad input.
    `pause` is called between PDF pages (the thread budget's pause point for batch work)."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as e:
        raise LoadError(f"cannot read file: {e.strerror}", "unreadable") from e
    if size == 0:
        raise LoadError("empty file (0 bytes)", "empty")
    if size > max_mb * 1024 * 1024:
        raise LoadError(f"file is {size / 2**20:.0f} MB, over the {max_mb} MB limit", "too_large")
    data = path.read_bytes()
    doc_id = file_sha256(data)
    head = data[:1024]
    if b"%PDF-" in head:
        pages = load_pdf(data, password=password, max_pages=max_pages, pause=pause)
        kind = "pdf"
    elif path.suffix.lower() == ".pdf":
        raise LoadError("not a PDF (no %PDF- header)", "malformed")
    elif path.suffix.lower() in TEXT_SUFFIXES:
        pages = load_text(data)
        kind = "text"
    else:
        raise LoadError(f"unsupported file type '{path.suffix or path.name}' (supported: .pdf, .txt, .md)", "unsupported")
    pages = [replace(p, text=t) for p, t in zip(pages, resolve_line_hyphens([p.text for p in pages]), strict=True)]
    doc = Document(doc_id=doc_id, filename=path.name, path=str(path), pages=tuple(pages), kind=kind)
    if not doc.text_pages:
        if kind == "pdf" and any(p.note for p in pages):
            raise LoadError("no text layer on any page (needs OCR)", "no_text")
        raise LoadError("no text found", "empty")
    return doc


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[str]]:
    """Files, folders (recursively) and globs -> supported files in a stable order, plus what matched nothing."""
    files: list[Path] = []
    missing: list[str] = []
    for raw in paths:
        raw = str(raw)
        matches = [Path(m) for m in sorted(glob.glob(os.path.expanduser(raw), recursive=True))] or [Path(raw)]
        for p in matches:
            if p.is_dir():
                files.extend(sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in SUPPORTED_SUFFIXES
                                    and not f.name.startswith(".") and f.name != "README.md"))
            elif p.is_file():
                files.append(p)
            else:
                missing.append(raw)
    return list(dict.fromkeys(files)), missing
