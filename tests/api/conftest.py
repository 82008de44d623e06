"""A real `ragqa serve` subprocess on 127.0.0.1 and a free port, with its state under a tmp folder.

The LLM is the embedded SmolLM2 (answers badly), capped at 64 tokens per completion: tests check structure and
citations, never wording.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import CACHE, fixture

CRAZY = "pdfs/pypdf/crazyones.pdf"  # one page, one chunk, English: the cheapest real PDF to answer from


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(home: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RAGQA_") or k in ("RAGQA_DATA", "RAGQA_TEST_CACHE", "RAGQA_REQUIRE_DATA")}
    env.update({"RAGQA_HOME": str(home), "RAGQA_CACHE_DIR": str(CACHE), "RAGQA_LLM__MAX_TOKENS": "64",
                # the suite's model: the default 1.5B is not installed by `make test`
                "RAGQA_LLM__MODEL": "smollm2-135m",
                # one llama.cpp thread: with two on a busy 2-core machine (tests, benchmarks beside us), its
                # spinning threads make a 300-token prompt take from 2 to 25 seconds; one thread takes 4, steadily
                "RAGQA_LLM__THREADS": "1",
                "HF_HUB_OFFLINE": "1", "RAGQA_CONFIG": str(home / "ragqa.toml")})
    env.update(settings)
    return env


class Server:
    """`python -m ragqa serve --port P` as a user starts it; start/stop/kill it like an operator."""

    def __init__(self, home: Path, **settings: str):
        self.home = home
        self.env = server_env(home, **settings)
        self.proc: subprocess.Popen | None = None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = home / f"server-{self.port}.log"
        self.client = httpx.Client(base_url=self.url, timeout=300)

    def start(self, timeout: float = 180) -> Server:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "a")
        self.proc = subprocess.Popen([sys.executable, "-m", "ragqa", "serve", "--port", str(self.port)],
                                     env=self.env, cwd=self.home, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.kill()
        pytest.fail(f"server not ready in {timeout}s:\n{self.log()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 90) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=30)

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def headers(self, key: str | None) -> dict:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def upload(self, collection: str, files: list[tuple[str, bytes]], key: str | None = None) -> httpx.Response:
        return self.client.post(f"/v1/collections/{collection}/documents", headers=self.headers(key),
                                files=[("files", (name, data, "application/octet-stream")) for name, data in files])

    def wait_job(self, job_id: str, key: str | None = None, timeout: float = 240, until=("succeeded", "failed")) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.client.get(f"/v1/jobs/{job_id}", headers=self.headers(key))
            assert r.status_code == 200, r.text
            job = r.json()
            if job["state"] in until:
                return job
            time.sleep(0.2)
        pytest.fail(f"job {job_id} not {until} in {timeout}s: {job}")

    def ingest(self, collection: str, paths: list[str], key: str | None = None) -> dict:
        r = self.upload(collection, [(Path(p).name, fixture(p).read_bytes()) for p in paths], key)
        assert r.status_code == 202, r.text
        job = self.wait_job(r.json()["job_id"], key)
        assert job["state"] == "succeeded", job
        return job


def pdf(rel: str) -> bytes:
    return fixture(rel).read_bytes()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """One server for the read-mostly tests, with collection 'crazy' (crazyones.pdf) ingested."""
    srv = Server(tmp_path_factory.mktemp("api-home"), RAGQA_SERVER__MAX_UPLOAD_MB="2").start()
    try:
        srv.ingest("crazy", [CRAZY])
        yield srv
    finally:
        srv.stop()
        srv.client.close()


@pytest.fixture
def copy_pdf(tmp_path):
    def copy(rel: str) -> Path:
        target = tmp_path / Path(rel).name
        shutil.copy(fixture(rel), target)
        return target

    return copy


def sse_events(text: str) -> list[tuple[str, str]]:
    """Server-Sent Events -> [(event, data)]."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        events.append((event, "\n".join(data)))
    return events
