"""Loading real PDFs: expected text, encryption, broken files, CJK, pages without a text layer."""

from __future__ import annotations

import json

import pytest

from conftest import DATA, data_file, fixture
from ragqa.errors import LoadError
from ragqa.load import load, normalize


def _words(text: str) -> list[str]:
    return normalize(text).split()


def test_crazyones_matches_pypdf_expected_text():
    doc = load(fixture("pdfs/pypdf/crazyones.pdf"))
    expected = fixture("pdfs/pypdf/crazyones.txt").read_text()
    assert len(doc.pages) == 1 and doc.pages[0].number == 1
    assert _words(doc.pages[0].text) == _words(expected)


def test_files_pypdf_cannot_parse_are_read_by_the_pdfium_fallback():
    # pypdf fails on these ("startxref not found"); pdfminer.six's own tests give their text.
    # pdfium gets the Latin text (not simple3's Japanese, which needs CMaps it lacks).
    assert "Hello World" in load(fixture("pdfs/pdfminer/simple1.pdf")).pages[0].text
    text = "".join(p.text for p in load(fixture("pdfs/pdfminer/simple3.pdf")).pages)
    assert "Hello" in text and "World" in text


def test_unreadable_pdf_fails_with_a_reason_not_a_crash():
    with pytest.raises(LoadError) as err:
        load(data_file("pdfs/py-pdf-sample-files/017-unreadable-meta-data/unreadablemetadata.pdf"))
    assert err.value.reason == "malformed" and "PDF" in str(err.value)


def _manifest():
    return json.loads(data_file("pdfs/MANIFEST.json").read_text())["files"]


def test_password_protected_pdfs_need_their_password():
    protected = [f for f in _manifest() if f.get("password") and f["file"].endswith(".pdf")]
    assert len(protected) >= 5
    for entry in protected:
        path = DATA / "pdfs" / entry["file"]
        if _opens_with_empty_password(path):  # r6-user-password.pdf does, despite its name
            assert load(path).text_pages
        else:
            with pytest.raises(LoadError) as err:
                load(path)
            assert err.value.reason == "encrypted", (entry["file"], err.value)
            assert "password" in str(err.value)
        doc = load(path, password=entry["password"])
        assert doc.text_pages, entry["file"]


def _opens_with_empty_password(path) -> bool:
    from pypdf import PasswordType, PdfReader

    return PdfReader(path).decrypt("") != PasswordType.NOT_DECRYPTED


def test_wrong_password_is_a_clear_error():
    with pytest.raises(LoadError, match="password given does not open it"):
        load(fixture("pdfs/pypdf/encrypted-file.pdf"), password="qwerty")


def test_empty_user_password_pdfs_are_read_without_asking():
    entries = [f for f in _manifest() if "empty-user-password" in f.get("tags", [])]
    assert entries
    for entry in entries:
        doc = load(DATA / "pdfs" / entry["file"])
        assert doc.text_pages


def test_zero_byte_and_fake_pdf(tmp_path):
    with pytest.raises(LoadError, match="empty file"):
        load(fixture("pdfs/pdfplumber/empty.pdf"))
    fake = tmp_path / "fake.pdf"
    fake.write_text("this is not a pdf at all")
    with pytest.raises(LoadError, match="not a PDF"):
        load(fake)


def test_truncated_pdf_fails_as_malformed(tmp_path):
    data = fixture("pdfs/pypdf/crazyones.pdf").read_bytes()
    broken = tmp_path / "truncated.pdf"
    broken.write_bytes(data[: len(data) // 3])
    try:
        doc = load(broken)
    except LoadError as err:
        assert err.reason in {"malformed", "no_text", "empty"}
    else:  # pypdf may recover part of it; then what it read must be real text
        assert doc.text_pages


def test_scanned_pdf_reports_no_text_layer():
    with pytest.raises(LoadError) as err:
        load(fixture("pdfs/py-pdf-sample-files/019-grayscale-image/grayscale-image.pdf"))
    assert err.value.reason == "no_text" and "needs OCR" in str(err.value)


def test_chinese_pdf_keeps_cjk_text():
    doc = load(fixture("pdfs/pdfplumber/issue-461-example.pdf"))
    text = "".join(p.text for p in doc.pages)
    assert sum("\u4e00" <= ch <= "\u9fff" for ch in text) > 20


def test_text_and_markdown(tmp_path):
    md = tmp_path / "notes.md"
    md.write_text("# Title\n\nSome   text with a ligature: \ufb01le and hyphen-\nation.\n", encoding="utf-8")
    doc = load(md)
    assert doc.kind == "text" and doc.pages[0].text == "# Title\n\nSome text with a ligature: file and hyphenation."
    gb = tmp_path / "zh.txt"
    gb.write_bytes("三国演义。第一回".encode("gb18030"))
    assert load(gb).pages[0].text == "三国演义。第一回"


def test_unsupported_type(tmp_path):
    f = tmp_path / "image.png"
    f.write_bytes(b"\x89PNG\r\n")
    with pytest.raises(LoadError, match="unsupported file type"):
        load(f)


def test_doc_id_is_content_hash(tmp_path):
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("same bytes")
    b.write_text("same bytes")
    assert load(a).doc_id == load(b).doc_id


def test_line_break_hyphens_pdfium_marks_are_resolved_per_document():
    """PDFium writes U+FFFE where a line ended in a hyphen; the document's own spelling decides what it was."""
    doc = load(fixture("pdfs/pdfplumber/federal-register-2020-17221.pdf"))
    text = "\n".join(p.text for p in doc.pages)
    assert not set(text) & {"\ufffe", "\uffff", "\x02"}
    assert "FAA-approved" in text and "FAAapproved" not in text  # a compound keeps its hyphen
    assert "non-normal" in text and "nonnormal" not in text


def test_a_broken_word_is_joined_when_the_document_writes_it_whole():
    from ragqa.load.normalize import normalize, resolve_line_hyphens

    pages = [normalize("recognising pat\ufffe\nterns, as Yangar\ufffeber showed"), normalize("see Yangarber (2003)")]
    assert resolve_line_hyphens(pages) == ["recognising patterns, as Yangarber showed", "see Yangarber (2003)"]
    assert resolve_line_hyphens([normalize("the FAA\ufffeApproved list")]) == ["the FAA-Approved list"]


def test_a_pdf_past_a_readers_safety_limit_is_refused_as_a_likely_bomb(tmp_path):
    from fixtures.hostile import wide_page_tree_pdf

    with pytest.raises(LoadError) as err:
        load(wide_page_tree_pdf(tmp_path / "wide.pdf"))
    assert err.value.reason == "too_large"
    assert str(err.value).startswith("refused as a likely PDF bomb") and "array element count" in str(err.value)
