"""PDF -> pages: pypdf opens and decrypts, pypdfium2 extracts, pypdf extracts the pages pdfium cannot read.

pdfium extracts text 13x faster than pypdf (docs/benchmarks.md) and opens 3 damaged files pypdf refuses, but
it loses text that pypdf keeps where a page's fonts give it no Unicode mapping: CID fonts without a ToUnicode
map (Japanese/Chinese: jo.pdf 898 vs 262 characters, kampo.pdf 2,639 vs 19, pr-136 5,061 vs 832) and Type3
fonts (4,208 vs 901). pypdf's reader is cheap to open (it parses lazily), so it decides per page from the
page's font dictionaries -- no text is extracted twice -- and pypdf extracts exactly those pages. Every
failure becomes a LoadError with a reason a user can act on."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

from ragqa.errors import LoadError
from ragqa.load.normalize import normalize
from ragqa.types import Page

log = logging.getLogger(__name__)

NO_TEXT = "no text layer (needs OCR)"


def refused(e: Exception) -> str:
    """Why a PDF past one of pypdf's safety limits (streams, arrays, page trees) is refused: what the file is."""
    return f"refused as a likely PDF bomb (or a badly damaged file): it goes past a reader's safety limit: {e}"


def load_pdf(data: bytes, *, password: str | None = None, max_pages: int = 5000,
             pause: Callable[[], object] | None = None) -> list[Page]:
    """`pause` is called between pages: batch ingestion waits there while a question is answered."""
    # Imported here so `ragqa --help` does not pay for pypdf.
    from pypdf import PdfReader
    from pypdf.errors import (
        DependencyError,
        FileNotDecryptedError,
        LimitReachedError,
        PdfReadError,
        WrongPasswordError,
    )

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns per damaged object; the report says enough
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            _decrypt(reader, password)
        n_pages = len(reader.pages)
    except LoadError:
        raise
    except LimitReachedError as e:
        raise LoadError(refused(e), "too_large") from e
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

    pdf = _open_pdfium(data, password if reader.is_encrypted else None)
    if pdf is not None and len(pdf) != n_pages:
        pdf.close()
        pdf = None
    pages: list[Page] = []
    try:
        for i in range(n_pages):
            if pause is not None:
                pause()
            text = None
            if pdf is not None and not _needs_pypdf(reader.pages[i]):
                try:
                    text = normalize(pdf[i].get_textpage().get_text_range())
                except Exception as e:
                    log.debug("pdfium, page %d: %s", i + 1, e)
            if not text:  # pdfium not used, failed, or read nothing: pypdf has its turn
                try:
                    text = normalize(reader.pages[i].extract_text() or "")
                except Exception as e:  # a damaged page fails alone; the rest of the document is kept
                    log.debug("page %d: %s", i + 1, e)
                    why = f"past a reader's safety limit: {e}" if isinstance(e, LimitReachedError) else type(e).__name__
                    pages.append(Page(number=i + 1, text="", note=f"unreadable page: {why}"))
                    continue
            pages.append(Page(number=i + 1, text=text, note=None if text else NO_TEXT))
    except LimitReachedError as e:  # outside a page's own extraction (its fonts, its resources)
        raise LoadError(refused(e), "too_large") from e
    finally:
        if pdf is not None:
            pdf.close()
    return pages


def _needs_pypdf(page) -> bool:
    """Fonts pdfium cannot map to Unicode: Type3, or composite (CID) fonts without a ToUnicode map. A
    resource dictionary that cannot be read counts as needing pypdf (the careful path)."""
    try:
        resources = page.get("/Resources")
        resources = resources.get_object() if resources is not None else {}
        fonts = resources.get("/Font")
        if fonts is None:
            return False
        for ref in fonts.get_object().values():
            font = ref.get_object()
            subtype = font.get("/Subtype")
            if subtype == "/Type3" or (subtype == "/Type0" and "/ToUnicode" not in font):
                return True
        return False
    except Exception:
        return True


def _open_pdfium(data: bytes, password: str | None):
    try:
        import pypdfium2 as pdfium

        return pdfium.PdfDocument(data, password=password or None)
    except Exception as e:  # pypdf reads it; pdfium's refusal only costs speed
        log.debug("pdfium cannot open: %s", e)
        return None


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
