"""llama.cpp is trusted in a process only after a one-token generation ran in a child: a build that crashes on
this CPU becomes a clear error naming the signal and the rebuild command, never a segfault of the caller."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import CACHE, dies_by
from ragqa import cpu
from ragqa.errors import BackendError
from ragqa.llm.llamacpp import LlamaCppLLM, verify_build
from ragqa.llm.registry import gguf_path

AMX_VM = frozenset({"avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"})


crash = dies_by("SIGSEGV")  # as ggml's AMX kernel is on a VM that refuses AMX


def test_a_build_that_runs_is_verified_once_and_remembered(tmp_path):
    model = gguf_path("smollm2-135m")
    assert "one-token generation" in verify_build(model, tmp_path)  # the real child, the real build
    assert json.loads((tmp_path / "llama-cpp-verified.json").read_text())
    assert "one-token generation" in verify_build(model, tmp_path, run=crash)  # remembered: no child this time
    with pytest.raises(BackendError) as err:  # doctor's way: ask again, whatever was remembered
        verify_build(model, tmp_path, force=True, run=crash)
    assert "SIGSEGV" in err.value.message and "make llama-cpp" in err.value.hint


def test_on_a_vm_that_refuses_amx_the_error_names_the_cause_and_the_flags_that_fix_it(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "cpu_flags", lambda: AMX_VM)
    monkeypatch.setattr(cpu, "run_child", crash)  # the AMX probe's child dies too
    with pytest.raises(BackendError) as err:
        verify_build(gguf_path("smollm2-135m"), tmp_path)
    assert "killed by SIGSEGV" in err.value.message and "advertises AMX but the OS refuses it" in err.value.message
    hint = err.value.hint
    assert "-DGGML_NATIVE=OFF" in hint and "-DGGML_AMX_TILE=OFF" in hint and "-DGGML_AVX512=ON" in hint
    assert not (tmp_path / "llama-cpp-verified.json").exists()  # a failure is asked again after the rebuild


def test_the_first_load_in_a_process_raises_instead_of_crashing(monkeypatch, tmp_path):
    monkeypatch.setattr(cpu, "run_child", crash)
    llm = LlamaCppLLM("smollm2-135m", n_ctx=512, threads=1, cache_dir=tmp_path)
    with pytest.raises(BackendError, match="crashes on this CPU"):
        llm.count_tokens("hello")
    assert llm._llama is None  # nothing was loaded in this process


def test_doctor_reports_a_crashing_build_and_exits_1_without_crashing(tmp_path):
    """`ragqa doctor` as a user runs it, with a llama_cpp on the path whose generation segfaults."""
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text(
        "import os, signal\n"
        "class Llama:\n"
        "    def __init__(self, *a, **kw):\n"
        "        pass\n"
        "    def create_completion(self, *a, **kw):\n"
        "        os.kill(os.getpid(), signal.SIGSEGV)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env.update(PYTHONPATH=str(fake.parent), RAGQA_HOME=str(tmp_path / "home"), RAGQA_CACHE_DIR=str(CACHE),
               RAGQA_CONFIG=str(tmp_path / "absent.toml"), RAGQA_LLM__MODEL="smollm2-135m", HF_HUB_OFFLINE="1")
    done = subprocess.run([sys.executable, "-m", "ragqa", "doctor", "--json"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(done.stdout)
    checks = {c["name"]: c for c in report["checks"]}
    build = checks["llama.cpp build"]
    assert not build["ok"] and "killed by SIGSEGV" in build["detail"] and "make llama-cpp" in build["hint"]
    assert checks["cpu"]["ok"] and "llama.cpp builds here with -DGGML_NATIVE" in checks["cpu"]["detail"]
    assert report["cpu"]["amx"]["advertised"] == bool(set(cpu.AMX_FLAGS) & cpu.cpu_flags())
    assert checks["embedder"]["ok"]  # the rest of the diagnosis still ran
