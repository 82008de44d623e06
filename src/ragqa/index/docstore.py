"""The SQLite document store: the record of truth for a collection.

Documents, chunks (text, provenance and vector), an FTS5 table and the graph's mentions live here; each
document is written in one transaction, and every write bumps `generation`, which the derived files
(FAISS index, graph JSON) carry so a stale one is noticed and rebuilt on open.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ragqa.cjk import bigram_cjk
from ragqa.filters import Filter
from ragqa.types import Chunk, Hit

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS documents (
        doc_id TEXT PRIMARY KEY, filename TEXT NOT NULL, source TEXT NOT NULL, kind TEXT NOT NULL,
        pages INTEGER NOT NULL, chunks INTEGER NOT NULL, notes TEXT NOT NULL DEFAULT '[]', added_at REAL NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}')""",
    """CREATE INDEX IF NOT EXISTS documents_source ON documents(source)""",
    # each page's text as read: a document's whole text for the integrations, and re-splitting without re-reading
    """CREATE TABLE IF NOT EXISTS pages (
        doc_id TEXT NOT NULL, number INTEGER NOT NULL, text TEXT NOT NULL, PRIMARY KEY(doc_id, number))""",
    # AUTOINCREMENT: ids are never reused, so a stale FAISS id can never point at someone else's text.
    """CREATE TABLE IF NOT EXISTS chunks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        doc_id TEXT NOT NULL REFERENCES documents(doc_id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL, page_start INTEGER NOT NULL, page_end INTEGER NOT NULL,
        char_start INTEGER NOT NULL, char_end INTEGER NOT NULL, text TEXT NOT NULL, vector BLOB NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id, ordinal)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(body, tokenize='porter unicode61 remove_diacritics 2')""",
    """CREATE TABLE IF NOT EXISTS mentions (
        entity TEXT NOT NULL, label TEXT NOT NULL, type TEXT NOT NULL, chunk_id INTEGER NOT NULL, doc_id TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS mentions_doc ON mentions(doc_id)""",
    """CREATE INDEX IF NOT EXISTS mentions_entity ON mentions(entity)""",
    # about=1: the chunk is *about* the entity (its document's title, a heading, the paragraph's subject),
    # not merely mentioning it; graph expansion goes from a hit's mentions to the chunks about them.
    """CREATE INDEX IF NOT EXISTS mentions_chunk ON mentions(chunk_id)""",
    """CREATE TABLE IF NOT EXISTS relations (
        head TEXT NOT NULL, tail TEXT NOT NULL, label TEXT NOT NULL, chunk_id INTEGER NOT NULL, doc_id TEXT NOT NULL)""",
    """CREATE INDEX IF NOT EXISTS relations_doc ON relations(doc_id)""",
]

_FTS_TOKEN = re.compile(r"\w+", re.UNICODE)
# Question words carry no evidence; OR-ed into a BM25 query they only add noise.
_QUERY_STOP = frozenset("""a an and are as at be by did do does for from had has have how i in is it its many much
of on or that the their there this to was were what when where which who whom whose why will with you""".split())


class DocStore:
    def __init__(self, path: Path, *, readonly: bool = False):
        self.path = Path(path)
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        uri = f"file:{self.path}?mode=ro" if readonly else f"file:{self.path}"
        # check_same_thread=False: the API reads from a thread pool; SQLite serialises access itself.
        self.db = sqlite3.connect(uri, uri=True, timeout=30, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=30000")
        if not readonly:
            self._set_wal()
            self.db.execute("PRAGMA synchronous=FULL")
            self._create_and_migrate()

    def close(self) -> None:
        self.db.close()

    def _set_wal(self, seconds: float = 30.0) -> None:
        """WAL mode; switching a new file to it takes an exclusive lock that SQLite does not wait for, so two
        processes creating one collection at once retry here instead of failing with 'database is locked'."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def _create_and_migrate(self) -> None:
        """The schema, and additive column changes for stores made by an older version, in one write
        transaction: two processes (or threads) opening a new collection at once cannot both see a column
        missing and both add it; the second finds the first one's work done."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            for statement in SCHEMA:
                cur.execute(statement)
            if "meta" not in {r[1] for r in cur.execute("PRAGMA table_info(documents)")}:
                cur.execute("ALTER TABLE documents ADD COLUMN meta TEXT NOT NULL DEFAULT '{}'")
            columns = {r[1] for r in cur.execute("PRAGMA table_info(mentions)")}
            if "about" not in columns:
                cur.execute("ALTER TABLE mentions ADD COLUMN about INTEGER NOT NULL DEFAULT 0")
            cur.execute("CREATE INDEX IF NOT EXISTS mentions_about ON mentions(about, entity)")
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise

    # -- meta ------------------------------------------------------------------------------------
    def get_meta(self, key: str, default: str | None = None) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                        (key, value))

    @property
    def generation(self) -> int:
        return int(self.get_meta("generation", "0"))

    def _bump(self) -> None:
        self.db.execute("INSERT INTO meta(key, value) VALUES('generation', '1') "
                        "ON CONFLICT(key) DO UPDATE SET value=CAST(value AS INTEGER)+1")

    # -- documents -------------------------------------------------------------------------------
    def has_document(self, doc_id: str) -> bool:
        return self.db.execute("SELECT 1 FROM documents WHERE doc_id=?", (doc_id,)).fetchone() is not None

    def list_doc_ids(self) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT doc_id FROM documents")]

    def chunk_ids_of(self, doc_id: str) -> list[int]:
        return [r[0] for r in self.db.execute("SELECT id FROM chunks WHERE doc_id=? ORDER BY ordinal", (doc_id,))]

    def older_versions(self, doc_id: str, source: str, filename: str, same_name_under: str | None = None) -> list[str]:
        """The documents a new version replaces: those from the same source, and, with `same_name_under`, those
        of the same file name whose source lies under that folder (uploads: each upload has its own folder)."""
        return [r[0] for r in self.db.execute(
            "SELECT doc_id FROM documents WHERE doc_id != ? AND (source = ? OR (? IS NOT NULL AND filename = ? "
            "AND substr(source, 1, length(?)) = ?))",
            (doc_id, source, same_name_under, filename, same_name_under, same_name_under))]

    def add_document(self, *, doc_id: str, filename: str, source: str, kind: str, pages: int, notes: list[str],
                     chunks: list[Chunk], vectors: np.ndarray,
                     mentions: Iterable[tuple] = (),
                     relations: Iterable[tuple[str, str, str, int]] = (),
                     replace: Iterable[str] = (), meta: dict | None = None,
                     page_texts: Iterable[tuple[int, str]] = ()) -> list[int]:
        """One transaction: the document with its chunks, vectors, FTS rows and graph mentions, or nothing.

        `mentions` are (entity, label, type, ordinal[, about]) and `relations` (head, tail, label, ordinal): they
        refer to chunks by ordinal. `replace` lists doc_ids this one supersedes; `meta` is the caller's metadata
        (JSON), `page_texts` each page's (number, text). Returns the new chunk ids.
        """
        return self.add_documents([dict(doc_id=doc_id, filename=filename, source=source, kind=kind, pages=pages,
                                        notes=notes, chunks=chunks, vectors=vectors, mentions=mentions,
                                        relations=relations, replace=replace, meta=meta,
                                        page_texts=page_texts)])[0]

    def add_documents(self, docs: list[dict]) -> list[list[int]]:
        """Several documents (each as `add_document`'s arguments) in one transaction: many small texts commit
        at once instead of paying a sync each; a document is still all there or not at all."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            out = [self._add(cur, **doc) for doc in docs]
            self._bump()
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return out

    def _add(self, cur: sqlite3.Cursor, *, doc_id: str, filename: str, source: str, kind: str, pages: int,
             notes: list[str], chunks: list[Chunk], vectors: np.ndarray, mentions: Iterable[tuple] = (),
             relations: Iterable[tuple] = (), replace: Iterable[str] = (), meta: dict | None = None,
             page_texts: Iterable[tuple[int, str]] = ()) -> list[int]:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        for old in replace:
            self._delete(cur, old)
        cur.execute(
            "INSERT INTO documents(doc_id, filename, source, kind, pages, chunks, notes, added_at, meta) "
            "VALUES(?,?,?,?,?,?,?,?,?)",
            (doc_id, filename, source, kind, pages, len(chunks), json.dumps(notes), time.time(),
             json.dumps(meta or {}, ensure_ascii=False)))
        cur.executemany("INSERT INTO pages(doc_id, number, text) VALUES(?,?,?)",
                        [(doc_id, n, t) for n, t in page_texts])
        ids = []
        for chunk, vec in zip(chunks, vectors, strict=True):
            cur.execute(
                "INSERT INTO chunks(doc_id, ordinal, page_start, page_end, char_start, char_end, text, vector) "
                "VALUES(?,?,?,?,?,?,?,?)",
                (doc_id, chunk.ordinal, chunk.page_start, chunk.page_end, chunk.char_start, chunk.char_end,
                 chunk.text, vec.tobytes()))
            ids.append(cur.lastrowid)
        cur.executemany("INSERT INTO chunks_fts(rowid, body) VALUES(?, ?)",
                        [(i, bigram_cjk(c.text)) for i, c in zip(ids, chunks, strict=True)])
        cur.executemany("INSERT INTO mentions(entity, label, type, chunk_id, doc_id, about) VALUES(?,?,?,?,?,?)",
                        [(m[0], m[1], m[2], ids[m[3]], doc_id, int(m[4]) if len(m) > 4 else 0) for m in mentions])
        cur.executemany("INSERT INTO relations(head, tail, label, chunk_id, doc_id) VALUES(?,?,?,?,?)",
                        [(h, t, label, ids[o], doc_id) for h, t, label, o in relations])
        return ids

    def delete_document(self, doc_id: str) -> list[int]:
        """Removes the document from every table in one transaction; returns the chunk ids it had."""
        cur = self.db.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            ids = self._delete(cur, doc_id)
            self._bump()
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
        return ids

    def _delete(self, cur: sqlite3.Cursor, doc_id: str) -> list[int]:
        ids = [r[0] for r in cur.execute("SELECT id FROM chunks WHERE doc_id=?", (doc_id,))]
        cur.executemany("DELETE FROM chunks_fts WHERE rowid=?", [(i,) for i in ids])
        cur.execute("DELETE FROM mentions WHERE doc_id=?", (doc_id,))
        cur.execute("DELETE FROM relations WHERE doc_id=?", (doc_id,))
        cur.execute("DELETE FROM chunks WHERE doc_id=?", (doc_id,))
        cur.execute("DELETE FROM pages WHERE doc_id=?", (doc_id,))
        cur.execute("DELETE FROM documents WHERE doc_id=?", (doc_id,))
        return ids

    def find_documents(self, ref: str) -> list[dict]:
        """A doc_id, a unique doc_id prefix (>= 8 chars) or a file name."""
        rows = self.db.execute(
            "SELECT doc_id, filename, source, kind, pages, chunks, notes, added_at, meta FROM documents "
            "WHERE doc_id=? OR filename=? OR source=? OR (length(?) >= 8 AND doc_id LIKE ? || '%')",
            (ref, ref, ref, ref, ref)).fetchall()
        return [self._doc_row(r) for r in rows]

    def list_documents(self) -> list[dict]:
        rows = self.db.execute("SELECT doc_id, filename, source, kind, pages, chunks, notes, added_at, meta FROM documents "
                               "ORDER BY added_at").fetchall()
        return [self._doc_row(r) for r in rows]

    def documents_from(self, sources: list[str]) -> list[dict]:
        """The documents with these sources (the integrations' ids), in no particular order."""
        marks = ",".join("?" * len(sources))
        rows = self.db.execute("SELECT doc_id, filename, source, kind, pages, chunks, notes, added_at, meta "
                               f"FROM documents WHERE source IN ({marks})", sources).fetchall() if sources else []
        return [self._doc_row(r) for r in rows]

    def documents_by_id(self, doc_ids: list[str]) -> dict[str, dict]:
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute("SELECT doc_id, filename, source, kind, pages, chunks, notes, added_at, meta "
                               f"FROM documents WHERE doc_id IN ({marks})", doc_ids).fetchall() if doc_ids else []
        return {r[0]: self._doc_row(r) for r in rows}

    def sources_with_meta(self, key: str, value, prefix: str) -> list[str]:
        """Sources under `prefix:` whose metadata has `key` == `value` (SQLite's JSON functions)."""
        return [r[0] for r in self.db.execute(
            "SELECT source FROM documents WHERE substr(source, 1, length(?)) = ? AND json_extract(meta, ?) = ?",
            (prefix + ":", prefix + ":", f'$."{key}"', value))]

    def metas(self, doc_ids: list[str]) -> dict[str, dict]:
        marks = ",".join("?" * len(doc_ids))
        rows = self.db.execute(f"SELECT doc_id, meta FROM documents WHERE doc_id IN ({marks})", doc_ids) \
            if doc_ids else []
        return {d: json.loads(m) for d, m in rows}

    def text_of(self, doc_id: str) -> str:
        """The document's text as read, pages joined by a blank line (from its chunks for a document stored
        before pages were kept)."""
        pages = [r[0] for r in self.db.execute("SELECT text FROM pages WHERE doc_id=? ORDER BY number", (doc_id,))]
        if pages:
            return "\n\n".join(pages)
        rows = self.db.execute("SELECT char_start, char_end, text FROM chunks WHERE doc_id=? ORDER BY ordinal",
                               (doc_id,)).fetchall()
        text, end = "", 0
        for start, stop, body in rows:  # overlapping chunks: keep what the previous one did not cover
            text += body[max(0, end - start):] if start < end else body
            end = max(end, stop)
        return text

    @staticmethod
    def _doc_row(r) -> dict:
        return {"doc_id": r[0], "filename": r[1], "source": r[2], "kind": r[3], "pages": r[4], "chunks": r[5],
                "notes": json.loads(r[6]), "added_at": r[7], "meta": json.loads(r[8])}

    # -- chunks ----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        q = self.db.execute
        return {
            "documents": q("SELECT count(*) FROM documents").fetchone()[0],
            "chunks": q("SELECT count(*) FROM chunks").fetchone()[0],
            "pages": q("SELECT coalesce(sum(pages), 0) FROM documents").fetchone()[0],
            "entities": q("SELECT count(DISTINCT entity) FROM mentions").fetchone()[0],
            "relations": q("SELECT count(*) FROM relations").fetchone()[0],
        }

    def chunk_ids(self) -> np.ndarray:
        return np.fromiter((r[0] for r in self.db.execute("SELECT id FROM chunks ORDER BY id")), dtype=np.int64)

    def iter_vectors(self, ids: Iterable[int] | None = None, batch: int = 4096) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if ids is None:
            cursor = self.db.execute("SELECT id, vector FROM chunks ORDER BY id")
        else:
            wanted = [int(i) for i in ids]
            cursor = iter(
                row for start in range(0, len(wanted), 500)
                for row in self.db.execute(
                    f"SELECT id, vector FROM chunks WHERE id IN ({','.join('?' * len(wanted[start:start + 500]))})",
                    wanted[start:start + 500]))
        while True:
            rows = [r for _, r in zip(range(batch), cursor, strict=False)]
            if not rows:
                return
            yield (np.array([r[0] for r in rows], dtype=np.int64),
                   np.vstack([np.frombuffer(r[1], dtype=np.float32) for r in rows]))

    def vectors_of(self, ids: Iterable[int]) -> dict[int, np.ndarray]:
        """Stored vectors by chunk id (graph expansion scores candidates that no search returned)."""
        return {int(i): v for batch_ids, vecs in self.iter_vectors(ids) for i, v in zip(batch_ids, vecs)}

    def hits(self, ids: list[int], scores: list[float], source: str) -> list[Hit]:
        """Turns chunk ids into Hits in the given order; ids no longer stored are skipped."""
        if not ids:
            return []
        rows = self.db.execute(
            "SELECT c.id, c.doc_id, d.filename, c.page_start, c.page_end, c.text, c.ordinal FROM chunks c "
            f"JOIN documents d USING(doc_id) WHERE c.id IN ({','.join('?' * len(ids))})", [int(i) for i in ids])
        by_id = {r[0]: r for r in rows}
        return [Hit(chunk_id=i, doc_id=by_id[i][1], filename=by_id[i][2], page_start=by_id[i][3],
                    page_end=by_id[i][4], text=by_id[i][5], score=float(s), source=source, ordinal=by_id[i][6])
                for i, s in zip(ids, scores, strict=True) if i in by_id]

    def chunks_between(self, doc_id: str, lo: int, hi: int) -> list[tuple]:
        """(id, ordinal, page_start, page_end, char_start, char_end, text) of a document's chunks lo..hi."""
        return self.db.execute(
            "SELECT id, ordinal, page_start, page_end, char_start, char_end, text FROM chunks "
            "WHERE doc_id=? AND ordinal BETWEEN ? AND ? ORDER BY ordinal", (doc_id, lo, hi)).fetchall()

    def lexical_search(self, query: str, k: int, within: Filter | None = None) -> list[Hit]:
        """BM25 over FTS5; the query gets the same CJK bigram treatment as the text, terms OR-ed. `within`: only
        the chunks the filter allows compete (the statistics stay the collection's)."""
        terms = _FTS_TOKEN.findall(bigram_cjk(query))
        terms = [t for t in terms if t.lower() not in _QUERY_STOP] or terms
        if not terms:
            return []
        match = " OR ".join('"' + t.replace('"', '') + '"' for t in dict.fromkeys(terms))
        sql, params = "", []
        if within:
            where, params = within.where()
            # `+rowid`: without the `+`, FTS5 takes the IN list as rowid lookups and runs the MATCH once per
            # allowed row; with it, the matches are filtered (bench/filters.py times both collections)
            sql = f" AND +rowid IN (SELECT c.id FROM chunks c JOIN documents d USING(doc_id) WHERE {where})"
        rows = self.db.execute(
            f"SELECT rowid, bm25(chunks_fts) AS s FROM chunks_fts WHERE chunks_fts MATCH ?{sql} ORDER BY s LIMIT ?",
            (match, *params, k)).fetchall()
        return self.hits([r[0] for r in rows], [-r[1] for r in rows], "lexical")

    def allowed_chunks(self, within: Filter) -> np.ndarray:
        """The ids of the chunks a filter allows, sorted."""
        where, params = within.where()
        return np.fromiter((r[0] for r in self.db.execute(
            f"SELECT c.id FROM chunks c JOIN documents d USING(doc_id) WHERE {where} ORDER BY c.id", params)),
            dtype=np.int64)

    # -- graph source rows -------------------------------------------------------------------------
    def mentions(self, doc_id: str | None = None) -> list[tuple]:
        """(entity, label, type, chunk_id, doc_id, about) rows, of one document or all."""
        sql = "SELECT entity, label, type, chunk_id, doc_id, about FROM mentions"
        return self.db.execute(sql + (" WHERE doc_id=?" if doc_id else ""), (doc_id,) if doc_id else ()).fetchall()

    def about_rows(self) -> list[tuple]:
        """(entity, chunk_id, doc_id) for every chunk *about* an entity (title, heading, subject), by chunk id."""
        return self.db.execute(
            "SELECT DISTINCT entity, chunk_id, doc_id FROM mentions WHERE about=1 ORDER BY chunk_id").fetchall()

    def mention_rows(self) -> list[tuple]:
        """(entity, chunk_id) for every stored mention that is not an about-row."""
        return self.db.execute("SELECT DISTINCT entity, chunk_id FROM mentions WHERE about=0").fetchall()

    def n_chunks(self) -> int:
        return self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]

    def phrase_count(self, phrase: str) -> int:
        """Chunks whose text holds `phrase` (FTS5 phrase query); 0 for a phrase FTS5 cannot parse."""
        try:
            return self.db.execute("SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?",
                                   ('"' + phrase.replace('"', "") + '"',)).fetchone()[0]
        except sqlite3.OperationalError:
            return 0

    def phrase_chunks(self, phrase: str, limit: int) -> list[int]:
        """Ids of up to `limit` chunks whose text holds `phrase`."""
        try:
            return [r[0] for r in self.db.execute("SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ? LIMIT ?",
                                                  ('"' + phrase.replace('"', "") + '"', limit))]
        except sqlite3.OperationalError:
            return []

    def relations(self, doc_id: str | None = None) -> list[tuple]:
        sql = "SELECT head, tail, label, chunk_id, doc_id FROM relations"
        return self.db.execute(sql + (" WHERE doc_id=?" if doc_id else ""), (doc_id,) if doc_id else ()).fetchall()

    def check(self) -> list[str]:
        """Consistency problems, empty when fine (used by tests and `ragqa stats --check`)."""
        problems = []
        q = self.db.execute
        n_chunks = q("SELECT count(*) FROM chunks").fetchone()[0]
        n_fts = q("SELECT count(*) FROM chunks_fts").fetchone()[0]
        if n_chunks != n_fts:
            problems.append(f"{n_chunks} chunks but {n_fts} FTS rows")
        bad = q("SELECT count(*) FROM documents d WHERE chunks != (SELECT count(*) FROM chunks c "
                "WHERE c.doc_id=d.doc_id)").fetchone()[0]
        if bad:
            problems.append(f"{bad} documents whose chunk count does not match")
        if q("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("sqlite integrity_check failed")
        return problems
