"""docs/benchmarks.md from the result files in bench/results/ (one per benchmark and set): every table there is
read from those files, with the command that writes each file and the machine it ran on.

    .venv/bin/python bench/report.py            # make bench-report
    .venv/bin/python bench/report.py --check    # exit 1 when docs/benchmarks.md is stale (tests/test_reference.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
ANSWER_SETS = [  # (file stem, label)
    ("squad_v1.1_dev_part_a", "SQuAD v1.1 dev"),
    ("squad_heldout", "SQuAD v1.1 dev, held out"),
    ("squad_heldout_seed1", "SQuAD v1.1 dev, held out"),
    ("hotpotqa_train_sample100", "HotpotQA"),
    ("musique_train_sample100", "MuSiQue"),
    ("cmrc2018_dev_part_a", "CMRC 2018 dev"),
    ("cmrc2018_trial", "CMRC 2018 trial, held out"),
    # questions no rule of the default chain was decided on (docs/answers.md)
    ("default_squad_heldout_seed5", "SQuAD v1.1 dev, held out for `auto`"),
    ("default_cmrc2018_heldout_seed5", "CMRC 2018 dev, held out for `auto`"),
    ("default_hotpotqa", "HotpotQA, default chain (not held out: these 100 informed earlier rules)"),
]
SET_DIRS = {"squad_v1.1_dev_part_a": "qa", "hotpotqa_train_sample100": "qa", "musique_train_sample100": "qa",
            "cmrc2018_dev_part_a": "chinese", "cmrc2018_trial": "chinese"}  # where each set lives under the data


def chosen(run: dict) -> str:
    """Which questions of the file a run answered, as its --offset/--sample/--seed/--limit say."""
    sel, n = run.get("selection", {}), run.get("questions", "?")
    if sel.get("sample"):
        return f"{n}: --offset {sel.get('offset', 0)} --sample {sel['sample']} --seed {sel.get('seed', 0)}"
    return f"{n}: first" if not sel.get("offset") else f"{n} from question {sel['offset'] + 1}"
RETRIEVAL_SETS = ["squad_v1.1_dev_part_a", "hotpotqa_train_sample100", "musique_train_sample100",
                  "cmrc2018_dev_part_a", "cmrc2018_trial"]


def load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def machine(m: dict | None) -> str:
    if not m:
        return "machine not recorded"
    flags = [f for f in m.get("cpu_flags", []) if f.startswith(("avx512", "amx"))]
    parts = [m.get("date", "date not recorded")[:10], f"{m.get('cpus_usable', m.get('cpu_count', '?'))} cores"]
    if m.get("cpu_model"):
        parts.append(m["cpu_model"] + (f" ({', '.join(flags)})" if flags else ""))
    parts.append(f"commit {m['git_commit']}" if m.get("git_commit") else "CPU model and commit not recorded"
                 if not m.get("cpu_model") else "commit not recorded")
    return ", ".join(parts)


def eval_command(stem: str, run: dict, chains: list[str]) -> str:
    """The `ragqa eval --answers` command line that writes bench/results/<stem>.json, from what the file records."""
    sel, env = run.get("selection", {}), [f"RAGQA_LLM__MODEL={run.get('model', '?')}"]
    if run.get("neighbours"):
        env.append(f"RAGQA_CONTEXT_NEIGHBOURS={run['neighbours']}")
    if run.get("rerank_judge"):
        env.append("RAGQA_RERANK_JUDGE=true")
    name = run.get("set", "?")
    args = [f"../shared/data/{SET_DIRS.get(name, '?')}/{name}.json", "--answers", "--chain", ",".join(chains)]
    if sel.get("sample"):
        args += ["--offset", str(sel.get("offset", 0)), "--sample", str(sel["sample"]), "--seed", str(sel.get("seed", 0))]
    else:
        args += (["--offset", str(sel["offset"])] if sel.get("offset") else []) + \
                (["--limit", str(sel["limit"])] if sel.get("limit") else [])
    if run.get("retrieval", "auto") != "auto":
        args += ["--retrieval", run["retrieval"]]
    args += ["-k", str(run.get("k", "?")), "--json", f"bench/results/{stem}.json"]
    return " ".join(env + ["ragqa", "eval"] + args)


def table(header: list[str], rows: list[list]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows), ""]


def ingest() -> list[str]:
    d = load("ingest")
    if d is None:
        return []
    r, lc = d["ragqa"], d["langchain"]
    lc_s = lc["seconds"]["total"] if isinstance(lc["seconds"], dict) else lc["seconds"]
    out = ["## Ingestion: ragqa vs the LangChain pipeline", "",
           "`make bench-ingest` writes `bench/results/ingest.json`: the PDFs of `pdfs/long/` (NIKE and Uber 10-Ks), "
           "ragqa's `Collection.ingest` against `PyPDFLoader` -> `RecursiveCharacterTextSplitter` -> "
           "`HuggingFaceEmbeddings` (the same MiniLM) -> `FAISS`, both in one run.", "",
           f"Measured {machine(d.get('machine'))}.", ""]
    out += table(["pipeline", "pages", "chunks", "seconds", "pages/s"], [
        ["ragqa", r["pages"], r["chunks"], f"{r['seconds']:.1f}", f"{r['pages_per_s']:.2f}"],
        ["LangChain", lc["pages"], lc["chunks"], f"{lc_s:.1f}", f"{lc['pages'] / lc_s:.2f}"]])
    agreement = d.get("agreement", {})
    out += [f"ragqa / LangChain pages/s: **{d['ratio_pages_per_s']:.2f}x**. ragqa stages (seconds, extraction "
            f"overlapped with embedding): " + ", ".join(f"{k} {v:.1f}" for k, v in r["stage_seconds"].items())
            + (f". Vectors against sentence-transformers on torch fp32: min cosine {agreement['min_cosine']:.5f}."
               if "min_cosine" in agreement else "."), ""]
    return out


def retrieval() -> list[str]:
    out = ["## Retrieval", "",
           "`make bench-retrieval` writes `bench/results/retrieval_<set>.json` (and a `.png` chart): `ragqa eval` on "
           "the four shared sets, every paragraph one ingested document, every mode; the held-out CMRC trial set: "
           "`ragqa eval ../shared/data/chinese/cmrc2018_trial.json --modes lexical,auto --json "
           "bench/results/retrieval_cmrc2018_trial.json`. Recall@k is the share of questions with a gold paragraph in "
           "the top k (all_gold@10: every gold paragraph in the top 10). `ragqa eval --json` records no machine; "
           "recall does not depend on its speed.", ""]
    for name in RETRIEVAL_SETS:
        d = load(f"retrieval_{name}")
        if d is None:
            continue
        rows = [[mode, *(f"{m.get(k, 0):.3f}" for k in ("recall@1", "recall@2", "recall@5", "recall@10",
                                                         "all_gold@10", "mrr")), m.get("n", "")]
                for mode, m in d.items() if isinstance(m, dict) and "recall@1" in m]
        out += [f"**{name}**", ""] + table(["mode", "R@1", "R@2", "R@5", "R@10", "all_gold@10", "MRR", "questions"],
                                           rows)
    return out


def answers() -> list[str]:
    out = ["## Answer quality", "",
           "`ragqa eval SET --answers` writes `bench/results/answers_<set>.json` (Qwen2.5-Coder-1.5B, retrieval "
           "`auto`, short-answer prompts; SQuAD's official normalisation, character F1 for Chinese; method: "
           "[answers.md](answers.md)). `cited gold` is the share of correct answers citing a gold paragraph. "
           "`--retrieval gold` (files `answers_gold_<set>.json`) hands the chains the gold paragraphs instead: the "
           "reading ceiling with retrieval's errors taken out. tokens/q counts prompt and reply tokens; s/q is the "
           "wall time per question, blank where any reply of that chain came from the eval's reply cache (a prompt "
           "an earlier chain or run already sent is replayed in ~0 s): compare seconds in the latency section, "
           "measured on live calls. `ragqa eval --json` records no machine.", ""]
    rows, commands = [], []
    for stem, label in ANSWER_SETS:
        for prefix, kind in (("answers", "retrieved"), ("answers_gold", "gold paragraphs")):
            d = load(f"{prefix}_{stem}")
            if d is None:
                continue
            chains = [c for c, r in d.items() if not c.startswith("_") and isinstance(r, dict)]
            for chain in chains:
                r = d[chain]
                rows.append([label, chosen(d.get("_run", {})), kind, chain, r["em"], r["f1"],
                             r.get("cited_gold_when_correct", ""), r.get("llm_calls_per_q", ""),
                             r.get("tokens_per_q", ""), live_seconds(r)])
            commands.append("    " + eval_command(f"{prefix}_{stem}", d.get("_run", {}), chains))
    out += table(["set", "questions", "context", "chain", "EM", "F1", "cited gold (correct)", "calls/q",
                  "tokens/q", "s/q"], rows)
    return out + ["The commands that write these files:", "", *commands, ""]


def live_seconds(summary: dict) -> float | str:
    """s/q of a chain whose every reply was a live call; blank for a file written before replays were counted."""
    return summary["s_per_q"] if "replayed" in summary and summary.get("s_per_q") is not None else ""


def versus_langchain() -> list[str]:
    out = ["## Answers: ragqa's chains vs LangChain's `load_qa_chain`", "",
           "`make bench-answers` writes `bench/results/answers_vs_langchain_<set>.json`: both pipelines on the same "
           "retrieved chunks and the same model behind one OpenAI-compatible server. A file marked pooled joins "
           "several runs question by question (the latest run of a question wins). LangChain's map_rerank scores 0 "
           "where its output parser raised (counted as crashes).", ""]
    rows, runs = [], []
    for stem, label in ANSWER_SETS:
        d = load(f"answers_vs_langchain_{stem}")
        if d is None:
            continue
        data_set = "/".join(Path(d.get("file", f"?/{stem}.json")).with_suffix("").parts[-2:])
        pooled = d.get("pooled")
        n = max((c["ragqa"]["summary"]["n"] for c in d["chains"].values()), default=0)
        runs.append(f"- {label}: `make bench-answers ANSWERS_SETS={data_set} ANSWERS_ARGS=\"--limit {n} -k 5 "
                    f"--chains {','.join(d['chains'])} --model qwen2.5-coder-1.5b\"`; "
                    + (f"{pooled['runs']} run{'s' if pooled['runs'] != 1 else ''} pooled, {pooled['runs_from'][:10]} to {pooled['runs_to'][:10]}; "
                       if pooled else "") + f"machine recorded: {machine(d.get('machine'))}")
        for chain, c in d["chains"].items():
            r, lc = c["ragqa"]["summary"], c["langchain"]["summary"]
            rows.append([label, chain, r["n"], f"{r['em']} / {r['f1']}", f"{lc['em']} / {lc['f1']}",
                         f"{r.get('errors', 0)} / {lc.get('errors', 0)}"])
    out += table(["set", "chain", "questions", "ragqa EM / F1", "LangChain EM / F1", "crashes (ragqa / LC)"], rows)
    return out + runs + [""]


def service() -> list[str]:
    out = []
    t = load("threads")
    if t:
        a, b = t["results"]["during ingestion"]["before"], t["results"]["during ingestion"]["after"]
        out += ["## Query latency during ingestion (thread budget)", "",
                f"`make bench-threads` writes `bench/results/threads.json`; measured {machine(t.get('machine'))}. "
                f"Median answer latency while another process ingests: {a['p50_s']} s with fixed threads, "
                f"{b['p50_s']} s with the thread budget (p95 {a['p95_s']} -> {b['p95_s']} s); alone: "
                f"{t['results']['alone']['after']['p50_s']} s.", ""]
    lo = load("load")
    if lo:
        q, s = lo["latency_s"]["query"], lo["latency_s"]["search"]
        out += ["## The HTTP service under load", "",
                f"`make bench-load` writes `bench/results/load.json`; measured {machine(lo.get('machine'))}. "
                f"{lo['args']['clients']} clients x {lo['args']['queries']} requests and {lo['args']['uploads']} "
                f"uploads against one server: {lo['server_errors_5xx']} responses 5xx, "
                f"{lo['jobs']['succeeded']}/{lo['jobs']['submitted']} jobs succeeded; search p50 {s['p50']} s, "
                f"answer p50 {q['p50']} s (p95 {q['p95']} s; the embedded SmolLM2 on 2 cores).", ""]
    p = load("pdf_extractors")
    if p:
        libs = p["libraries"]
        out += ["## PDF text extraction", "",
                f"`make bench-pdf` writes `bench/results/pdf_extractors.json`; measured {machine(p.get('machine'))}. "
                "Over every shared PDF: " + "; ".join(
                    f"{name} opened {v['opened']} of {v['files']}" for name, v in libs.items())
                + f". Characters pypdfium2 / pypdf on the files both read: {p['agreement']['char_ratio_total']:.3f}. "
                "ragqa reads each page with pypdfium2, and with pypdf where pdfium cannot map the fonts.", ""]
    book = load("chains_book")
    if book:
        b = book["book"]
        out += ["## Summarising a book", "",
                f"`make bench-chains CHAINS_ARGS=\"--book --out bench/results/chains_book.json\"` writes `bench/results/chains_book.json`; measured "
                f"{machine(book.get('machine'))}, model {book['model']['name']}. {b['chars']:,} characters: "
                f"{b['calls']} LLM calls, levels {' -> '.join(map(str, b['levels']))}, {b['seconds'] / 60:.0f} min.", ""]
    return out


def integrations() -> list[str]:
    runs = [r for r in (load(f"integrations_{stem}") for stem in ("hotpotqa_train_sample100",
                                                                  "squad_v1.1_dev_part_a_first500")) if r]
    if not runs:
        return []
    out = ["## LangChain and LlamaIndex retrievers", "",
           "`make bench-integrations` writes `bench/results/integrations_<set>.json`: one collection per set, ingested "
           "by `ragqa eval`'s pipeline, then the same questions through `Collection.search` (what `ragqa eval` "
           "reports), LangChain's `RagqaRetriever.invoke` and LlamaIndex's `RagqaRetriever.retrieve`, 50 chunks "
           "each, mapped to paragraphs the same way. Overhead: k=5, the three paths interleaved per question, "
           "median over the questions.", ""]
    rows = []
    for r in runs:
        for mode, row in r["recall"].items():
            rows.append([f"{r['set']} ({r['questions']} questions)", mode, row["ragqa_eval"]["recall@5"],
                         row["langchain"]["recall@5"], row["llama_index"]["recall@5"],
                         "yes" if row["identical"] else "**no**"])
    out += table(["set", "mode", "recall@5 ragqa eval", "LangChain", "LlamaIndex", "every metric identical"], rows)
    rows = []
    for r in runs:
        o = r["overhead"]
        for name, v in o["paths"].items():
            rows.append([r["set"], f"`{name}`", v["median_ms"], f"{v['extra_ms']:+.2f}", v["ratio_to_collection_search"]])
    out += ["Per query (mode auto, k=5):", ""]
    out += table(["set", "path", "median ms", "over Collection.search, ms", "ratio"], rows)
    out += ["Measured " + "; ".join(f"{r['set']}: {machine(r.get('machine'))}" for r in runs) + ".", ""]
    return out


def json_replies() -> list[str]:
    runs = [r for r in (load("json_replies_qwen2.5-coder-1.5b"), load("json_replies_smollm2-135m")) if r]
    if not runs:
        return []
    out = ["## Reading the models' JSON replies", "",
           "`make bench-json` writes `bench/results/json_replies_<model>.json`: the embedded model answers the "
           "map_rerank JSON prompt and the graph-extraction prompt on the first SQuAD dev (part a) paragraphs, "
           "unconstrained, at the production reply length and cut short; counted with ragqa's own readers, strict "
           "JSON only against strict then `json-repair` (what ragqa does).", ""]
    rows = []
    for r in runs:
        for name, row in r["rows"].items():
            rows.append([r["model"], name, row["max_tokens"], row["replies"], row["counts"], row["strict"],
                         row["strict_then_repair"]])
    out += table(["model", "prompt/length", "max tokens", "replies", "counted", "strict JSON", "strict, then json-repair"],
                 rows)
    out += ["Parsing cost per cut-short reply: " + "; ".join(
        f"{r['model']} {r['parse_microseconds_per_reply_short']['strict']} us strict, "
        f"{r['parse_microseconds_per_reply_short']['strict_then_repair']} us with repair" for r in runs)
        + ". Measured " + "; ".join(f"{r['model']}: {machine(r.get('machine'))}" for r in runs) + ".", ""]
    return out


def latency() -> list[str]:
    d = load("latency")
    if d is None:
        return []
    out = ["## How long an answer takes on CPU", "",
           "`make bench-latency` writes `bench/results/latency.json`; measured " + machine(d.get("machine"))
           + f", model {d['model']}, k={d['k']}. Each question retrieved once, then answered by `auto` and by one "
           "bare `stuff` call on the same chunks, in turns, the KV cache emptied before each answer; TTFT is the "
           "time from the start of the answer to its first streamed token.", ""]
    rows = []
    for name, label in (("demo", "the demo question (NIKE 10-K)"), ("squad", "SQuAD dev")):
        r = d[name]
        sel = r.get("selection")
        what = label + (f", {r['auto']['n']} questions (--offset {sel['offset']} --sample {sel['sample']} "
                        f"--seed {sel['seed']})" if sel else f", {r['auto']['n']} answers each")
        for chain in ("auto", "stuff"):
            c = r[chain]
            rows.append([what, chain, c["p50_s"], c["p95_s"], c["ttft_p50_s"], c["calls_per_q"],
                         c["prompt_tokens_per_q"], r["auto_over_stuff_p50"] if chain == "auto" else ""])
    out += table(["questions", "chain", "p50 s", "p95 s", "TTFT p50 s", "calls/q", "prompt tokens/q",
                  "auto / stuff p50"], rows)
    p = d["prefix_cache"]
    rows = [[chain, v["with"]["prompt_tokens_per_q"], v["without"]["evaluated_per_q"], v["with"]["evaluated_per_q"],
             f"{100 * v['evaluated_saved']:.0f}%", v["without"]["p50_s"], v["with"]["p50_s"]]
            for chain, v in p.items() if isinstance(v, dict)]
    out += [f"Prompt tokens llama.cpp evaluates per question, its KV cache kept between the calls of one answer "
            f"(`RAGQA_LLM__PREFIX_CACHE=true`, the default) or not, on the first {p['questions']} of those SQuAD "
            "questions:", ""]
    out += table(["chain", "prompt tokens/q", "evaluated without the cache", "evaluated with it", "saved",
                  "p50 s without", "p50 s with"], rows)
    st = d["startup"]
    out += [f"`ragqa ask` in a fresh process until its first LLM call (median of {st['runs']}): "
            f"{st['hash_every_process_s']:.1f} s when the model file is hashed (every process before verdicts were "
            f"kept; now the first after an install or a change of the file), {st['verdict_kept_s']:.1f} s with the "
            "verdict kept (the model loads in a thread while the question is retrieved).", ""]
    return out


def rules() -> list[str]:
    d = load("rules")
    if d is None:
        return []
    out = ["## The answer-cleaning rules, switched off one at a time", "",
           "`.venv/bin/python bench/rules.py` writes `bench/results/rules.json`: `ragqa eval --answers` (k=3) on the "
           "held-out samples of the default chain, each rule of the chains off in turn, the replies from the eval's "
           "cache (the rules act on replies already made).", ""]
    rows = []
    for st in d["sets"].values():
        sel = st["selection"]
        for variant, r in st["rows"].items():
            rows.append([f"{st['file']} (--offset {sel['offset']} --sample {sel['sample']} --seed {sel['seed']})",
                         variant, *(f"{r[c]['em']} / {r[c]['f1']}" for c in d["chains"])])
    return out + table(["set", "rules", *(f"{c} EM / F1" for c in d["chains"])], rows)


def filters() -> list[str]:
    files = sorted((ROOT / "bench" / "results").glob("filters_*.json"))
    if not files:
        return []
    out = ["## Filtered retrieval", "",
           "`make bench-filters` writes `bench/results/filters_<set>.json`: the questions whose gold paragraphs are "
           "all in half `a` of the set's articles, searched on the whole set with the filter `meta half=a` and on a "
           "collection that holds only that half.", ""]
    rows = []
    for f in files:
        d = json.loads(f.read_text())
        for mode, r in d["results"].items():
            a, b = r["filtered"], r["only_those_documents"]
            rows.append([f"{d['set']} ({d['questions']} questions)", mode, f"{a['recall@5']} / {b['recall@5']}",
                         f"{a['mrr']} / {b['mrr']}", r["same_top5"], f"{a['ms_per_query']} / {b['ms_per_query']}"])
    return out + table(["set", "mode", "recall@5 filtered / only those", "MRR", "same top 5", "ms per query"], rows)


def scale() -> list[str]:
    d = load("scale")
    if d is None:
        return []
    pool = d["pool"]
    out = ["## Retrieval at scale", "",
           "`make bench-scale` writes `bench/results/scale.json`; measured " + machine(d.get("machine")) + ". "
           f"A pool of {pool['chunks']:,} real chunks ({pool['texts']:,} texts: the shared QA corpora and two books, "
           f"ingested by ragqa with {pool['embedder']} in {pool['ingest_s']} s) written as often as it takes, "
           "each copy under new ids with its vectors turned by a rotation of its own (bench/README.md says why). "
           f"Search through `Collection.search`, k={d['k']}, each question embedded once beforehand.", ""]
    rows = []
    for c in d["collections"]:
        ms = c["search_ms"]
        rows.append([f"{c['chunks']:,}", c["index_kind"], c["index_build_s"], c["docstore_write_s"],
                     c["rss_mb"]["peak"], c["query_embed_p50_ms"],
                     *(f"{ms[m]['p50_ms']} / {ms[m]['p95_ms']}" for m in ("dense", "lexical", "hybrid", "graph")
                       if m in ms)])
    out += table(["chunks", "index (auto)", "index build s", "docstore write s", "peak RSS MB", "query embed ms",
                  "dense p50 / p95 ms", "lexical", "hybrid", "graph"], rows)
    rows = [[f"{c['chunks']:,}", kind, v["recall_at_10"], v["vector_search_p50_ms"], v["build_s"],
             "yes" if v["chosen_by_auto"] else ""] for c in d["collections"] for kind, v in c["indexes"].items()]
    out += ["Vector index alone: recall@10 against exact search (tie-aware), on the questions turned into a copy "
            "drawn at random:", ""]
    out += table(["chunks", "index", "recall@10", "search p50 ms", "build s", "chosen by auto"], rows)
    rows = [[f"{c['chunks']:,}", kind, ", ".join(f"{k}={v}" for k, v in point.items() if k not in (
        "recall_at_10", "vector_search_p50_ms")), point["recall_at_10"], point["vector_search_p50_ms"]]
        for c in d["collections"] for kind, v in c["indexes"].items() for point in v.get("sweep", [])]
    if rows:
        out += ["The approximate indexes at other search widths (the defaults are chosen from these):", ""]
        out += table(["chunks", "index", "setting", "recall@10", "search p50 ms"], rows)
    mem = d.get("ingest_memory", [])
    if mem:
        out += ["`ragqa ingest` of a folder of text files, resident memory sampled every 0.2 s:", ""]
        out += table(["documents", "seconds", "peak RSS MB", "RSS MB, peak of each tenth of the run"],
                     [[f"{m['documents']:,}", m["seconds"], m["peak_rss_mb"],
                       " ".join(str(round(x)) for x in m["rss_mb_by_tenth_of_the_run"])] for m in mem])
    return out


def page() -> str:
    head = ["# Benchmarks", "",
            "Generated by `bench/report.py` (`make bench-report`) from the files in `bench/results/`, one per "
            "benchmark and set, each overwritten when its benchmark runs again (history is in git). Every section "
            "names the command that writes its file and the machine it ran on; ratios compare two pipelines "
            "measured in the same run. How each benchmark works: [bench/README.md](../bench/README.md).", ""]
    sections = [ingest(), retrieval(), filters(), answers(), latency(), rules(), versus_langchain(), integrations(),
                json_replies(), service(), scale()]
    return "\n".join(head + [line for section in sections for line in section]).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when docs/benchmarks.md is stale")
    args = ap.parse_args(argv)
    text = page()
    if args.check:
        if PAGE.read_text() != text:
            print("docs/benchmarks.md is stale; run `python bench/report.py`", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(text)
    print(f"wrote {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
