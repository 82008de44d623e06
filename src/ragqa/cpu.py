"""What this CPU can really execute, which is not always what CPUID advertises.

A VM may list `amx_tile amx_int8 amx_bf16` in /proc/cpuinfo while its hypervisor refuses AMX tile state: a native
llama.cpp build then compiles ggml's AMX kernels and dies with a general protection fault on the first matrix
multiply (`ldtilecfg`). So the llama.cpp build flags come from a probe that runs the instructions in a child
process, never from the flag list alone. Standard library only: the Makefile runs this file before anything is
installed (`python3 src/ragqa/cpu.py cmake-args`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

AMX_FLAGS = ("amx_tile", "amx_int8", "amx_bf16")

# /proc/cpuinfo flag -> ggml's CMake option, for a build that names every instruction set it may use.
GGML_OPTIONS = (
    ("sse4_2", "GGML_SSE42"),
    ("avx", "GGML_AVX"),
    ("avx2", "GGML_AVX2"),
    ("fma", "GGML_FMA"),
    ("f16c", "GGML_F16C"),
    ("bmi2", "GGML_BMI2"),
    ("avx_vnni", "GGML_AVX_VNNI"),
    ("avx512f", "GGML_AVX512"),
    ("avx512vbmi", "GGML_AVX512_VBMI"),
    ("avx512_vnni", "GGML_AVX512_VNNI"),
    ("avx512_bf16", "GGML_AVX512_BF16"),
)
AMX_OPTIONS = (("amx_tile", "GGML_AMX_TILE"), ("amx_int8", "GGML_AMX_INT8"), ("amx_bf16", "GGML_AMX_BF16"))

# The child: ask Linux for AMX tile state, then run ldtilecfg / tilezero / tilerelease from an executable page.
# Machine code checked against GNU as: `ldtilecfg (%rdi); tilezero %tmm0; tilerelease; ret`.
_AMX_CHILD = r"""
import ctypes, mmap, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.syscall(158, 0x1023, 18) != 0:  # arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)
    sys.stderr.write("arch_prctl(ARCH_REQ_XCOMP_PERM) refused: errno %d" % ctypes.get_errno())
    sys.exit(3)
code = bytes.fromhex("c4e2784907" "c4e27b49c0" "c4e27849c0" "c3")
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(code)
run = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(ctypes.addressof(ctypes.c_char.from_buffer(page)))
config = (ctypes.c_ubyte * 64)()
config[0] = 1                  # palette 1
config[16] = 64                # tile 0: 64 bytes per row ...
config[48] = 16                # ... and 16 rows
run(ctypes.addressof(config))
"""


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; empty elsewhere."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


@dataclass(frozen=True)
class Probe:
    """The answer for one instruction set: advertised by CPUID, and whether a process may really run it."""

    feature: str
    advertised: bool
    usable: bool
    detail: str


def describe_exit(code: int) -> str:
    """'killed by SIGSEGV' for a child's negative return code, 'exit N' otherwise."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit {code}"


def run_child(source: str, *args: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run Python source in a fresh interpreter; a crash there is a return code here, never a crash here."""
    try:
        done = subprocess.run([sys.executable, "-c", source, *args], capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, "PYTHONFAULTHANDLER": "0"})
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:.0f}s"
    return done.returncode, (done.stderr or done.stdout).strip()[-500:]


def probe_amx(flags: frozenset[str] | None = None, *, run=None) -> Probe:
    """Whether AMX tile instructions run here: advertised, granted by the OS, and executed in a child process."""
    flags = cpu_flags() if flags is None else flags
    run = run or run_child
    advertised = bool(flags & set(AMX_FLAGS))
    if not advertised:
        return Probe("amx", False, False, "not advertised by the CPU")
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "AMD64"):
        return Probe("amx", True, False, f"advertised, but not probed on {platform.system()} {platform.machine()}")
    code, out = run(_AMX_CHILD)
    if code == 0:
        return Probe("amx", True, True, "advertised; the OS grants tile state and ldtilecfg runs")
    reason = out.splitlines()[-1] if out else ""
    return Probe("amx", True, False, f"advertised, but refused: the probe was {describe_exit(code)}"
                 + (f" ({reason})" if reason and code > 0 else ""))


def file_key(*paths: Path) -> str:
    """Identity of files by path, size and mtime: a rebuilt library or a replaced model is a new key."""
    parts = []
    for path in paths:
        try:
            st = path.stat()
            parts.append(f"{path}:{st.st_size}:{st.st_mtime_ns}")
        except OSError:
            parts.append(f"{path}:absent")
    return hashlib.sha256("|".join(parts + sorted(cpu_flags())).encode()).hexdigest()[:16]


def remembered(path: Path, key: str) -> dict | None:
    """A verdict stored by `remember`, or None."""
    try:
        return json.loads(path.read_text()).get(key)
    except (OSError, ValueError, AttributeError):
        return None


def remember(path: Path, key: str, verdict: dict) -> None:
    """Store a verdict so that later processes skip the child run (written atomically; best effort)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            known = json.loads(path.read_text())
        except (OSError, ValueError):
            known = {}
        known[key] = verdict
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass


def llama_cmake_args(flags: frozenset[str] | None = None, amx: Probe | None = None) -> list[str]:
    """CMake options for llama-cpp-python on this machine.

    Native (`-march=native`) wherever everything the CPU advertises also runs. Where AMX is advertised but
    refused, native would compile the AMX kernels, so the build names each instruction set from /proc/cpuinfo
    instead and turns AMX off.
    """
    flags = cpu_flags() if flags is None else flags
    amx = probe_amx(flags) if amx is None else amx
    if not amx.advertised or amx.usable:
        return ["-DGGML_NATIVE=ON"]
    args = ["-DGGML_NATIVE=OFF"]
    args += [f"-D{option}={'ON' if flag in flags else 'OFF'}" for flag, option in GGML_OPTIONS]
    args += [f"-D{option}=OFF" for _, option in AMX_OPTIONS]
    return args


def llama_rebuild_hint(flags: frozenset[str] | None = None, amx: Probe | None = None) -> str:
    """The commands that rebuild llama-cpp-python for this CPU."""
    try:
        from importlib.metadata import version

        pinned = f"=={version('llama_cpp_python')}"
    except Exception:  # noqa: BLE001 - not installed: any version
        pinned = ""
    args = " ".join(llama_cmake_args(flags, amx))
    return (f"Rebuild llama-cpp-python for this CPU: `make llama-cpp` in the ragqa checkout, or "
            f"CMAKE_ARGS=\"{args}\" pip install --no-deps --force-reinstall --no-cache-dir "
            f"--no-binary llama-cpp-python 'llama-cpp-python{pinned}'")


def report(flags: frozenset[str] | None = None) -> dict:
    """What the probe saw and chose, for `ragqa doctor`, the docs and the install log."""
    flags = cpu_flags() if flags is None else flags
    amx = probe_amx(flags)
    noted = sorted(flags & ({f for f, _ in GGML_OPTIONS} | set(AMX_FLAGS)))
    return {"machine": platform.machine(), "flags": noted, "amx": asdict(amx),
            "llama_cmake_args": " ".join(llama_cmake_args(flags, amx))}


def main(argv: list[str]) -> int:
    if argv[1:] == ["cmake-args"]:
        sys.stdout.write(" ".join(llama_cmake_args()) + "\n")
        return 0
    if argv[1:] in ([], ["report"]):
        sys.stdout.write(json.dumps(report(), indent=2) + "\n")
        return 0
    sys.stderr.write("usage: python src/ragqa/cpu.py [report | cmake-args]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
