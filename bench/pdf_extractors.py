"""pypdf vs pypdfium2 text extraction on every PDF under $RAGQA_DATA/pdfs (recursive).

Per library: files opened, files failed (with reasons), pages/s over the files both libraries opened, characters
extracted, and their agreement on the files both read:

    char ratio      = pypdfium2 characters / pypdf characters (whitespace excluded: the libraries lay out
                      spaces and line breaks differently, pdfium ends lines with \\r\\n); also given with it
    char overlap    = sum over characters c of min(count_pypdf(c), count_pdfium(c)) / max(total_pypdf,
                      total_pdfium): 1.0 = the same characters in any order; catches equal counts of different
                      (garbled) text that the ratio cannot see

Encrypted files are opened with the empty password, then with `files[].password` from
$RAGQA_DATA/pdfs/MANIFEST.json. Each (file, library) runs in a forked worker process with a timeout and an
address-space limit, so a pathological file can neither hang nor crash the benchmark: it becomes a failure
(`timeout`, `crashed (signal 11)`, ...). Timings are taken inside the worker, from the bytes in memory to the
text of the last page (process start and file reading excluded); per-page errors leave the file opened.

    RAGQA_DATA=../shared/data .venv/bin/python bench/pdf_extractors.py [--limit N] [--timeout 60] [--out PATH]
"""

from __future__ import annotations

import argparse
import glob
import io
import json
import logging
import multiprocessing as mp
import os
import resource
import statistics
import sys
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine_info  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("RAGQA_DATA") or ROOT.parent / "shared" / "data").resolve()
PDFS = DATA / "pdfs"
LIBS = ("pypdf", "pypdfium2")
AGREE_LOW, AGREE_HIGH = 0.9, 1 / 0.9  # per-file char ratios outside this band are listed as disagreements


def fail(message: str, code: int = 2) -> None:
    print(f"bench/pdf_extractors.py: {message}", file=sys.stderr)
    sys.exit(code)


# -- extraction (runs in the worker) -------------------------------------------------------------------
class Encrypted(Exception):
    pass


def _summary(texts: list[str], page_errors: int, password_used: str | None) -> dict:
    joined = "".join(texts)
    counts = Counter(c for c in joined if not c.isspace())
    return {
        "pages": len(texts),
        "chars": len(joined),
        "chars_nonspace": sum(counts.values()),
        "empty_pages": sum(1 for t in texts if not t.strip()),
        "page_errors": page_errors,
        "password_used": password_used,
        "char_counts": dict(counts),
    }


def extract_pypdf(data: bytes, password: str | None) -> tuple[list[str], int, str | None]:
    from pypdf import PasswordType, PdfReader

    reader = PdfReader(io.BytesIO(data), strict=False)
    used = None
    if reader.is_encrypted:
        for candidate in ("", password) if password else ("",):
            if reader.decrypt(candidate) != PasswordType.NOT_DECRYPTED:
                used = candidate
                break
        else:
            raise Encrypted("encrypted: " + ("the manifest password does not open it" if password else "needs a password"))
    texts, errors = [], 0
    for i in range(len(reader.pages)):
        try:
            texts.append(reader.pages[i].extract_text() or "")
        except Exception:  # a damaged page fails alone, as in ragqa.load.pdf
            texts.append("")
            errors += 1
    return texts, errors, used


def extract_pypdfium2(data: bytes, password: str | None) -> tuple[list[str], int, str | None]:
    import pypdfium2 as pdfium

    used = None
    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as e:
        if "password" not in str(e).lower():
            raise
        if not password:
            raise Encrypted(f"encrypted: needs a password ({e})") from e
        try:
            pdf = pdfium.PdfDocument(data, password=password)
        except pdfium.PdfiumError as e2:
            raise Encrypted(f"encrypted: the manifest password does not open it ({e2})") from e2
        used = password
    texts, errors = [], 0
    try:
        for i in range(len(pdf)):
            try:
                page = pdf[i]
                textpage = page.get_textpage()
                texts.append(textpage.get_text_bounded())
                textpage.close()
                page.close()
            except Exception:
                texts.append("")
                errors += 1
    finally:
        pdf.close()
    return texts, errors, used


EXTRACTORS = {"pypdf": extract_pypdf, "pypdfium2": extract_pypdfium2}


def _worker(conn, lib: str, path: str, password: str | None, max_memory_mb: int) -> None:
    if max_memory_mb:
        limit = max_memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    logging.getLogger("pypdf").setLevel(logging.CRITICAL)
    warnings.simplefilter("ignore")
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        conn.send({"ok": False, "error": f"unreadable: {e}"})
        return
    t0 = time.perf_counter()
    try:
        texts, errors, used = EXTRACTORS[lib](data, password)
        seconds = time.perf_counter() - t0  # counting characters below is the benchmark's work, not the library's
        result = _summary(texts, errors, used) | {"ok": True, "seconds": seconds}
        conn.send(result)
        return
    except Encrypted as e:
        result = {"ok": False, "error": str(e)}
    except MemoryError:
        result = {"ok": False, "error": f"out of memory (over {max_memory_mb} MB)"}
    except BaseException as e:  # noqa: BLE001 - anything a parser raises is a failure of that file
        result = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
    result["seconds"] = time.perf_counter() - t0
    conn.send(result)


def run_one(lib: str, path: Path, password: str | None, timeout: float, max_memory_mb: int) -> dict:
    ctx = mp.get_context("fork")  # the parent has imported both libraries: the child starts in milliseconds
    receiver, sender = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_worker, args=(sender, lib, str(path), password, max_memory_mb), daemon=True)
    t0 = time.perf_counter()
    proc.start()
    sender.close()
    if not receiver.poll(timeout):  # no answer, and the worker still holds its end of the pipe
        proc.kill()
        proc.join()
        result = {"ok": False, "error": f"timeout after {timeout:g} s", "seconds": time.perf_counter() - t0}
    else:
        try:
            result = receiver.recv()
        except (EOFError, OSError):  # the pipe closed without an answer: the worker died
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()
            code = proc.exitcode
            why = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            result = {"ok": False, "error": f"worker crashed ({why})", "seconds": time.perf_counter() - t0}
        proc.join(5)
        if proc.is_alive():
            proc.kill()
            proc.join()
    receiver.close()
    return result


# -- the run ---------------------------------------------------------------------------------------
def load_passwords() -> dict[Path, str]:
    manifest = PDFS / "MANIFEST.json"
    if not manifest.exists():
        print(f"warning: no {manifest}; encrypted files get no password", file=sys.stderr)
        return {}
    files = json.loads(manifest.read_text()).get("files", [])
    return {(PDFS / f["file"]).resolve(): f["password"] for f in files if f.get("password")}


def versions() -> dict:
    """The extractors' versions (machine.py's record) plus the PDFium build pypdfium2 wraps."""
    out: dict = {}
    try:
        import pypdfium2

        out["pdfium"] = str(pypdfium2.version.PDFIUM_INFO)
    except Exception:  # noqa: BLE001 - informational only
        pass
    return out


def ratio(a: float, b: float) -> float | None:
    return a / b if b else None


def overlap(a: dict[str, int], b: dict[str, int]) -> float | None:
    total = max(sum(a.values()), sum(b.values()))
    if not total:
        return None
    return sum(min(n, b.get(c, 0)) for c, n in a.items()) / total


def summarize(rows: list[dict]) -> dict:
    both = [r for r in rows if all(r[lib]["ok"] for lib in LIBS)]
    libs = {}
    for lib in LIBS:
        opened = [r for r in rows if r[lib]["ok"]]
        failed = [r for r in rows if not r[lib]["ok"]]
        pages = sum(r[lib]["pages"] for r in both)
        seconds = sum(r[lib]["seconds"] for r in both)
        libs[lib] = {
            "files": len(rows),
            "opened": len(opened),
            "failed": len(failed),
            "failures": [{"file": r["file"], "reason": r[lib]["error"]} for r in failed],
            "timeouts": sum(1 for r in failed if r[lib]["error"].startswith("timeout")),
            "crashes": sum(1 for r in failed if r[lib]["error"].startswith("worker crashed")),
            "opened_with_manifest_password": sum(1 for r in opened if r[lib].get("password_used")),
            "pages_all_opened": sum(r[lib]["pages"] for r in opened),
            "chars_all_opened": sum(r[lib]["chars"] for r in opened),
            "both": {
                "files": len(both),
                "pages": pages,
                "seconds": seconds,
                "pages_per_s": ratio(pages, seconds),
                "chars": sum(r[lib]["chars"] for r in both),
                "chars_nonspace": sum(r[lib]["chars_nonspace"] for r in both),
                "empty_pages": sum(r[lib]["empty_pages"] for r in both),
                "page_errors": sum(r[lib]["page_errors"] for r in both),
            },
        }
    a, b = LIBS
    per_file = [r["agreement"] for r in both if r["agreement"]["char_ratio"] is not None]
    ratios = [p["char_ratio"] for p in per_file]
    overlaps = [r["agreement"]["char_overlap"] for r in both if r["agreement"]["char_overlap"] is not None]
    disagree = sorted((r for r in both if r["agreement"]["char_ratio"] is None
                       and r[a]["chars_nonspace"] + r[b]["chars_nonspace"] > 0
                       or r["agreement"]["char_ratio"] is not None
                       and not AGREE_LOW <= r["agreement"]["char_ratio"] <= AGREE_HIGH),
                      key=lambda r: r["file"])
    agreement = {
        "files": len(both),
        "char_ratio_definition": f"{b} / {a}, whitespace excluded",
        "char_ratio_total": ratio(libs[b]["both"]["chars_nonspace"], libs[a]["both"]["chars_nonspace"]),
        "char_ratio_total_with_whitespace": ratio(libs[b]["both"]["chars"], libs[a]["both"]["chars"]),
        "char_ratio_median": statistics.median(ratios) if ratios else None,
        "char_ratio_min": min(ratios) if ratios else None,
        "char_ratio_max": max(ratios) if ratios else None,
        "char_overlap_median": statistics.median(overlaps) if overlaps else None,
        "char_overlap_min": min(overlaps) if overlaps else None,
        "files_outside_band": len(disagree),
        "band": [AGREE_LOW, AGREE_HIGH],
        "disagreements": [{"file": r["file"], f"{a}_chars": r[a]["chars_nonspace"], f"{b}_chars": r[b]["chars_nonspace"],
                           "char_ratio": r["agreement"]["char_ratio"], "char_overlap": r["agreement"]["char_overlap"]}
                          for r in disagree],
        "page_count_mismatches": [{"file": r["file"], a: r[a]["pages"], b: r[b]["pages"]}
                                  for r in both if r[a]["pages"] != r[b]["pages"]],
        "only_one_opened": [{"file": r["file"], "opened_by": next(lib for lib in LIBS if r[lib]["ok"]),
                             "failed_by": next(lib for lib in LIBS if not r[lib]["ok"]),
                             "reason": next(r[lib]["error"] for lib in LIBS if not r[lib]["ok"])}
                            for r in rows if sum(r[lib]["ok"] for lib in LIBS) == 1],
    }
    return {"libraries": libs, "agreement": agreement}


def fmt(x, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)


def print_report(summary: dict, elapsed: float) -> None:
    libs, agree = summary["libraries"], summary["agreement"]
    print()
    print(f"{'library':<10} {'files':>5} {'opened':>6} {'failed':>6} {'pages*':>7} {'seconds*':>8} {'pages/s*':>8} "
          f"{'chars*':>10} {'empty pages*':>12}")
    for lib, s in libs.items():
        both = s["both"]
        print(f"{lib:<10} {s['files']:>5} {s['opened']:>6} {s['failed']:>6} {both['pages']:>7} "
              f"{both['seconds']:>8.2f} {fmt(both['pages_per_s']):>8} {both['chars']:>10} {both['empty_pages']:>12}")
    print(f"* over the {agree['files']} files both libraries opened")
    a, b = LIBS
    print(f"agreement ({b}/{a} characters, whitespace excluded): total {fmt(agree['char_ratio_total'], '.3f')}, "
          f"median per file {fmt(agree['char_ratio_median'], '.3f')} "
          f"[{fmt(agree['char_ratio_min'], '.2f')} .. {fmt(agree['char_ratio_max'], '.2f')}]; with whitespace "
          f"{fmt(agree['char_ratio_total_with_whitespace'], '.3f')}; character overlap median "
          f"{fmt(agree['char_overlap_median'], '.3f')}, min {fmt(agree['char_overlap_min'], '.3f')}")
    if agree["disagreements"]:
        print(f"files outside {AGREE_LOW:.2f}..{AGREE_HIGH:.2f} ({len(agree['disagreements'])}):")
        for d in agree["disagreements"]:
            print(f"  {d['file']}: {a} {d[f'{a}_chars']}, {b} {d[f'{b}_chars']} chars, "
                  f"overlap {fmt(d['char_overlap'], '.2f')}")
    if agree["page_count_mismatches"]:
        print("page counts differ: " + "; ".join(f"{m['file']} ({m[a]} vs {m[b]})"
                                                 for m in agree["page_count_mismatches"]))
    for lib, s in libs.items():
        if s["failures"]:
            print(f"{lib} failed on {s['failed']}:")
            for f in s["failures"]:
                print(f"  {f['file']}: {f['reason']}")
    print(f"({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", nargs="+", metavar="GLOB", help="PDFs to read (default: every *.pdf under "
                    "$RAGQA_DATA/pdfs, recursively)")
    ap.add_argument("--limit", type=int, help="only the N smallest files of the selection (a quick smoke test)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per file and library (default 60)")
    ap.add_argument("--max-memory-mb", type=int, default=8192, help="address-space limit of a worker (0 = none)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pdf_extractors.json")
    args = ap.parse_args(argv)

    if args.files:
        files = [Path(m).resolve() for p in args.files
                 for m in sorted(glob.glob(os.path.expanduser(p), recursive=True)) if Path(m).is_file()]
    else:
        if not PDFS.is_dir():
            fail(f"no benchmark data at {PDFS} (set RAGQA_DATA to the shared data folder, or pass --files)")
        files = sorted(p.resolve() for p in PDFS.rglob("*") if p.is_file() and p.suffix.lower() == ".pdf")
    files = list(dict.fromkeys(files))
    if args.limit is not None:
        files = sorted(sorted(files, key=lambda p: (p.stat().st_size, str(p)))[:args.limit])
    if not files:
        fail("no PDF files found")
    passwords = load_passwords()

    import pypdf  # noqa: F401 - imported before forking, so that no worker pays for it
    import pypdfium2  # noqa: F401

    def label(p: Path) -> str:
        return str(p.relative_to(PDFS)) if p.is_relative_to(PDFS) else str(p)

    machine = machine_info(LIBS)  # before the run: the load average at the start
    machine["versions"].update(versions())
    t_start = time.perf_counter()
    rows = []
    for n, path in enumerate(files, 1):
        row = {"file": label(path), "bytes": path.stat().st_size, "manifest_password": path in passwords}
        for lib in LIBS:
            row[lib] = run_one(lib, path, passwords.get(path), args.timeout, args.max_memory_mb)
        a, b = (row[lib] for lib in LIBS)
        if a["ok"] and b["ok"]:
            row["agreement"] = {"char_ratio": ratio(b["chars_nonspace"], a["chars_nonspace"]),
                                "char_overlap": overlap(a["char_counts"], b["char_counts"])}
        status = " ".join(f"{lib}:{'ok' if row[lib]['ok'] else 'FAIL'}({row[lib]['seconds']:.2f}s)" for lib in LIBS)
        print(f"[{n}/{len(files)}] {row['file']}  {status}", file=sys.stderr, flush=True)
        rows.append(row)
    elapsed = time.perf_counter() - t_start
    for row in rows:  # the character histograms served the overlap; they do not go into the JSON
        for lib in LIBS:
            row[lib].pop("char_counts", None)

    machine["load_average_at_end"] = list(os.getloadavg())
    summary = summarize(rows)
    results = {
        "benchmark": "pdf_extractors",
        "machine": machine,
        "data": str(PDFS),
        "settings": {"timeout_s": args.timeout, "max_memory_mb": args.max_memory_mb, "limit": args.limit,
                     "pdfium_text": "PdfTextPage.get_text_bounded() per page",
                     "pypdf_text": "PdfReader(strict=False).pages[i].extract_text() per page"},
        "seconds": elapsed,
        **summary,
        "files": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    os.replace(tmp, args.out)
    print_report(summary, elapsed)
    print(f"\nresults: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
