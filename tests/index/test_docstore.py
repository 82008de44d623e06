"""The docstore's schema and migrations under concurrent opens (real SQLite files under tmp_path)."""

from __future__ import annotations

import sqlite3
import threading

from ragqa.index.docstore import DocStore


def _old_store(path) -> None:
    """A docstore as an older version made it: `mentions` without the `about` column."""
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE mentions (entity TEXT NOT NULL, label TEXT NOT NULL, type TEXT NOT NULL, "
               "chunk_id INTEGER NOT NULL, doc_id TEXT NOT NULL)")
    db.commit()
    db.close()


def _open_at_once(path, n: int = 8) -> list[BaseException]:
    start, errors = threading.Barrier(n), []

    def open_one() -> None:
        start.wait()
        try:
            DocStore(path).close()
        except BaseException as e:  # noqa: BLE001 - collected for the assertion
            errors.append(e)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return errors


def test_opening_a_new_store_from_many_threads_at_once_creates_it_once(tmp_path):
    for i in range(5):  # each round a fresh file: the race is between the first opens
        path = tmp_path / f"new{i}" / "docstore.sqlite"
        assert _open_at_once(path) == []
        assert DocStore(path).counts()["documents"] == 0


def test_an_old_store_is_migrated_once_when_opened_concurrently(tmp_path):
    for i in range(5):
        path = tmp_path / f"old{i}.sqlite"
        _old_store(path)
        assert _open_at_once(path) == []
        columns = [r[1] for r in sqlite3.connect(path).execute("PRAGMA table_info(mentions)")]
        assert columns.count("about") == 1
