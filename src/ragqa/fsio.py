"""Files written whole: a temporary file, fsync, rename, fsync of the folder, so a reader sees the old file or
the new one and a crash never leaves half of one. The bottom layer: stdlib only at import, used by every store."""

from __future__ import annotations

import json
import os
from pathlib import Path


def fsync_replace(tmp: Path, final: Path) -> None:
    """Make the finished temporary file `tmp` the file `final`, durably."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    dir_fd = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def temp_beside(path: Path) -> Path:
    """A temporary name next to `path` (same file system, so the rename is atomic), one per process."""
    return path.with_name(path.name + f".tmp{os.getpid()}")


def write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    tmp = temp_beside(path)
    tmp.write_text(json.dumps(data, ensure_ascii=False, indent=1))
    fsync_replace(tmp, path)


def read_json(path: Path, default=None):
    """The JSON in `path`, or `default` when it is missing or unreadable (derived files are rebuilt then)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return default


def save_figure(fig, path: Path, dpi: int | None = None) -> Path:
    """A finished matplotlib figure to `path` (folders made), then closed so a long run does not keep it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **({"dpi": dpi} if dpi else {}))
    plt.close(fig)
    return path
