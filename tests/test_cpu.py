"""The CPU probe: what the machine really runs decides the llama.cpp build flags and what `ragqa doctor` says.
The refusing machine is played by a real child process that dies by a signal, as the AMX VM's probe does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from conftest import REPO, dies_by
from ragqa import cpu

AVX512_AMX = frozenset({"sse4_2", "avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512vbmi", "avx512_vnni",
                        "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"})


def test_a_cpu_without_amx_builds_native_and_is_not_probed():
    def never(*a, **kw):
        raise AssertionError("nothing to probe")

    flags = AVX512_AMX - {"amx_tile", "amx_int8", "amx_bf16"}
    amx = cpu.probe_amx(flags, run=never)
    assert not amx.advertised and not amx.usable
    assert cpu.llama_cmake_args(flags, amx) == ["-DGGML_NATIVE=ON"]


@pytest.mark.parametrize("sig", [signal.SIGSEGV, signal.SIGILL])
def test_amx_advertised_but_refused_turns_amx_off_and_names_every_other_instruction_set(sig):
    amx = cpu.probe_amx(AVX512_AMX, run=dies_by(sig.name))
    assert amx.advertised and not amx.usable and sig.name in amx.detail
    args = cpu.llama_cmake_args(AVX512_AMX, amx)
    assert args[0] == "-DGGML_NATIVE=OFF"
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= set(args)
    assert {"-DGGML_AVX512=ON", "-DGGML_AVX512_BF16=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON"} <= set(args)
    assert "-DGGML_AVX_VNNI=OFF" in args  # not in the flags, so not compiled in
    assert "-DGGML_NATIVE=OFF" in cpu.llama_rebuild_hint(AVX512_AMX, amx) and "make llama-cpp" in \
        cpu.llama_rebuild_hint(AVX512_AMX, amx)


def test_amx_that_runs_keeps_the_native_build():
    amx = cpu.probe_amx(AVX512_AMX, run=lambda source, *a, **kw: (0, ""))
    assert amx.usable and cpu.llama_cmake_args(AVX512_AMX, amx) == ["-DGGML_NATIVE=ON"]


def test_the_real_amx_child_agrees_with_what_this_cpu_advertises():
    """The probe's own machine code, run here: where the CPU lists no AMX it must not report success."""
    code, _ = cpu.run_child(cpu._AMX_CHILD)
    if not set(cpu.AMX_FLAGS) & cpu.cpu_flags():
        assert code != 0
    assert cpu.probe_amx().usable == (code == 0 and bool(set(cpu.AMX_FLAGS) & cpu.cpu_flags()))


def test_the_makefile_runs_the_probe_with_a_bare_interpreter():
    """`make install` calls it before anything is installed: no ragqa, no site-packages (-I -S)."""
    out = subprocess.run([sys.executable, "-I", "-S", str(REPO / "src" / "ragqa" / "cpu.py"), "cmake-args"],
                         capture_output=True, text=True, timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == cpu.llama_cmake_args()


def test_remembered_verdicts_are_keyed_by_the_files_they_were_made_for(tmp_path):
    lib = tmp_path / "libggml-cpu.so"
    lib.write_bytes(b"one build")
    key = cpu.file_key(lib)
    cpu.remember(tmp_path / "v.json", key, {"ok": True, "detail": "ran"})
    assert cpu.remembered(tmp_path / "v.json", key) == {"ok": True, "detail": "ran"}
    lib.write_bytes(b"a rebuilt library")
    os.utime(lib, ns=(1, 1))
    assert cpu.file_key(lib) != key and cpu.remembered(tmp_path / "v.json", cpu.file_key(lib)) is None
