"""PDF -> pages with pypdf, and pypdfium2 for files pypdf cannot parse.

pypdf stays first: on the shared set it keeps Japanese/Chinese text that pdfium loses (jo.pdf 898 vs 262
characters, kampo.pdf 2,639 vs 19), while pdfium opens 3 damaged files pypdf refuses (startxref not found).
See docs/benchmarks.md. Every failure becomes a LoadError with a reason a user can act on."""

from __future__ import annotations

import io
import logging

from ragqa.errors import LoadError
from ragqa.load.normalize import normalize
from ragqa.types import Page

log = logging.getLogger(__name__)

NO_TEXT = "no text layer (needs OCR)"


def load_pdf(data: bytes, *, password: str | None = None, max_pages: int = 5000) -> list[Page]:
    # Imported here so `ragqa --help` does not pay for pypdf.
    from pypdf import PdfReader
    from pypdf.errors import DependencyError, FileNotDecryptedError, PdfReadError, WrongPasswordError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns per damaged object; the report says enough
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _decrypt(reader, password)
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except DependencyError as e:
        raise LoadError(f"encrypted with an algorithm that needs an extra package: {e}", "encrypted") from e
    except (WrongPasswordError, FileNotDecryptedError) as e:
        raise LoadError("encrypted: wrong or missing password", "encrypted", hint="Pass --password.") from e
    except (PdfReadError, ValueError, KeyError, TypeError, AttributeError, IndexError, RecursionError, OSError) as e:
        rescued = _load_with_pdfium(data, password, max_pages)
        if rescued is not None:
            log.info("pypdf failed (%s); read with pypdfium2", e)
            return rescued
        raise LoadError(f"malformed PDF: {type(e).__name__}: {e}"[:300], "malformed") from e
    if n_pages == 0:
        raise LoadError("PDF has no pages", "empty")
    if n_pages > max_pages:
        raise LoadError(f"{n_pages} pages, over the {max_pages}-page limit", "too_large")

    pages: list[Page] = []
    for i in range(n_pages):
        try:
            raw = reader.pages[i].extract_text() or ""
        except Exception as e:  # a damaged page fails alone; the rest of the document is kept
            log.debug("page %d: %s", i + 1, e)
            pages.append(Page(number=i + 1, text="", note=f"unreadable page: {type(e).__name__}"))
            continue
        text = normalize(raw)
        pages.append(Page(number=i + 1, text=text, note=None if text else NO_TEXT))
    return pages


def _decrypt(reader, password: str | None) -> None:
    from pypdf import PasswordType

    for candidate in ("", password) if password else ("",):
        try:
            if reader.decrypt(candidate) != PasswordType.NOT_DECRYPTED:
                return
        except NotImplementedError as e:
            raise LoadError(f"encrypted with an unsupported scheme: {e}", "encrypted") from e
    if password:
        raise LoadError("encrypted: the password given does not open it", "encrypted")
    raise LoadError("encrypted: needs a password", "encrypted", hint="Pass --password (or set RAGQA_PDF_PASSWORD).")


def _load_with_pdfium(data: bytes, password: str | None, max_pages: int) -> list[Page] | None:
    """The fallback for files pypdf cannot parse; None when pdfium cannot read them either."""
    try:
        import pypdfium2 as pdfium
    except ImportError:
        return None
    try:
        pdf = pdfium.PdfDocument(data, password=password)
    except Exception:
        return None
    try:
        n_pages = len(pdf)
        if n_pages == 0 or n_pages > max_pages:
            return None
        pages = []
        for i in range(n_pages):
            try:
                text = normalize(pdf[i].get_textpage().get_text_range())
            except Exception as e:
                pages.append(Page(number=i + 1, text="", note=f"unreadable page: {type(e).__name__}"))
                continue
            pages.append(Page(number=i + 1, text=text, note=None if text else NO_TEXT))
        return pages
    finally:
        pdf.close()
