"""File names and content sniffing, without a server."""

from __future__ import annotations

import pytest

from ragqa.api.uploads import safe_filename, sniff


@pytest.mark.parametrize("given, expected", [
    ("../../etc/passwd", "passwd"),
    ("..\\..\\windows\\win.ini", "win.ini"),
    ("/abs/path/report.pdf", "report.pdf"),
    (".hidden.pdf", "hidden.pdf"),
    ("a\x00b\nc.pdf", "a_b_c.pdf"),
    ("..", "upload"),
    ("", "upload"),
    ("x" * 300 + ".pdf", "x" * 116 + ".pdf"),
    ("年次報告.pdf", "年次報告.pdf"),
    ("what?*<>|.txt", "what_____.txt"),
])
def test_safe_filename_keeps_no_folder_and_no_control_characters(given, expected):
    assert safe_filename(given) == expected


def test_sniff_decides_by_content_not_name():
    assert sniff(b"%PDF-1.7\n...", "report.pdf", 100) == ("report.pdf", "pdf", None)
    assert sniff(b"%PDF-1.4", "renamed.bin", 10)[:2] == ("renamed.bin.pdf", "pdf")
    name, kind, rejected = sniff(b"<html>hello</html>", "fake.pdf", 18)
    assert kind is None and rejected.status == 415 and "not a PDF" in rejected.reason
    assert sniff(b"plain words", "notes.md", 11) == ("notes.md", "text", None)
    assert sniff(b"\x00\x01\x02", "notes.txt", 3)[2].status == 415
    assert sniff(b"\xff\xfe\xfa", "notes.txt", 3)[2].status == 415
    assert sniff(b"", "empty.pdf", 0)[2].status == 422


def test_a_name_without_a_known_suffix_is_read_by_its_declared_media_type():
    assert sniff(b"plain words", "notes", 11, "text/plain; charset=utf-8") == ("notes.txt", "text", None)
    assert sniff(b"# Title", "readme", 7, "text/markdown") == ("readme.md", "text", None)
    name, kind, rejected = sniff(b"\x90\x0b\x10", "file", 3, "application/pdf")
    assert (name, kind, rejected.status) == ("file.pdf", None, 415) and "not a PDF" in rejected.reason
    name, kind, rejected = sniff(b"\x90\x0b\x10", "file", 3, "application/octet-stream")
    assert kind is None and "application/pdf" in rejected.reason  # the reason says how to send it
    assert "unsupported" in sniff(b"MZ\x90", "tool.exe", 3)[2].reason
