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
    assert sniff(b"%PDF-1.7\n...", "report.pdf", 100) == ("pdf", None)
    assert sniff(b"%PDF-1.4", "renamed.bin", 10)[0] == "pdf"
    kind, rejected = sniff(b"<html>hello</html>", "fake.pdf", 18)
    assert kind is None and rejected.status == 415 and "not a PDF" in rejected.reason
    assert sniff(b"plain words", "notes.md", 11) == ("text", None)
    assert sniff(b"\x00\x01\x02", "notes.txt", 3)[1].status == 415
    assert sniff(b"\xff\xfe\xfa", "notes.txt", 3)[1].status == 415
    assert sniff(b"", "empty.pdf", 0)[1].status == 422
    assert "unsupported" in sniff(b"MZ\x90", "tool.exe", 3)[1].reason
