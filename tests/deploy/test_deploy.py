"""deploy/: every file parses, every RAGQA_* variable names a real setting and its value validates, ports and
paths agree between files, vLLM's flags agree with the sizing guide, and its probes use /health."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import BaseModel

from ragqa.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
sys.path.insert(0, str(DEPLOY))
import sizing  # noqa: E402  deploy/sizing.py: the guide's numbers

VLLM_FLAGS = ("--max-model-len", "--gpu-memory-utilization", "--enable-prefix-caching", "--tensor-parallel-size")
# Read by ragqa but not Settings fields: the TOML path and the traceback switch.
NON_FIELD_VARIABLES = {"RAGQA_CONFIG", "RAGQA_DEBUG"}


# -- what the settings accept ----------------------------------------------------------------------
def setting_variables(model: type[BaseModel] = Settings, prefix: str = "RAGQA_") -> set[str]:
    """RAGQA_FIELD for every field, RAGQA_GROUP__FIELD inside nested models (env_nested_delimiter '__')."""
    names = set()
    for name, field in model.model_fields.items():
        names.add(prefix + name.upper())
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names |= setting_variables(field.annotation, prefix + name.upper() + "__")
    return names


def test_the_variable_list_is_derived_from_the_model():
    names = setting_variables()
    assert {"RAGQA_HOME", "RAGQA_LLM__BASE_URL", "RAGQA_SERVER__API_KEYS", "RAGQA_SERVER__PORT"} <= names
    assert "RAGQA_LLM__NO_SUCH_FIELD" not in names
    src = "\n".join(p.read_text() for p in (REPO / "src" / "ragqa").rglob("*.py"))
    for name in NON_FIELD_VARIABLES:
        assert f'"{name}"' in src, f"{name} is allowed in deploy files but nothing in src/ reads it"


def load_settings(env: dict[str, str], monkeypatch, tmp_path) -> Settings:
    """Settings exactly as the deployed process would build them from this environment."""
    for key in list(__import__("os").environ):
        if key.startswith("RAGQA_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("RAGQA_CONFIG", str(tmp_path / "absent.toml"))
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Settings()


# -- parsers ---------------------------------------------------------------------------------------
COMPOSE_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+][^}]*)?\}")


def interpolate(value: str) -> str:
    """Compose's ${VAR:?message} / ${VAR:-default}, as if the operator exported VAR."""
    return COMPOSE_VAR.sub(lambda m: f"test-{m.group(1).lower().replace('_', '-')}", value)


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def compose_env(service: str) -> dict[str, str]:
    env = compose()["services"][service].get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: interpolate(str(v)) for k, v in env.items()}


def k8s_docs() -> list[dict]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                doc["_file"] = path.name
                docs.append(doc)
    return docs


def k8s(kind: str, name: str) -> dict:
    matches = [d for d in k8s_docs() if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def k8s_container(deployment: str) -> dict:
    (container,) = k8s("Deployment", deployment)["spec"]["template"]["spec"]["containers"]
    return container


def k8s_env(deployment: str) -> dict[str, str]:
    env = {}
    for item in k8s_container(deployment).get("env", []):
        if "value" in item:
            env[item["name"]] = str(item["value"])
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            secret = k8s("Secret", ref["name"])
            env[item["name"]] = secret["stringData"][ref["key"]]
    return env


def systemd_unit(name: str) -> dict[str, list[tuple[str, str]]]:
    """A unit file: [Section] -> [(key, value)], keys may repeat, backslash continues a line."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    text = (DEPLOY / "systemd" / name).read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line, f"{name}: not a key=value line: {line!r}"
        key, value = line.split("=", 1)
        current.append((key.strip(), value.strip()))
    return sections


def unit_values(unit: dict, section: str, key: str) -> list[str]:
    return [v for k, v in unit[section] if k == key]


def env_file(path: Path) -> dict[str, str]:
    """systemd EnvironmentFile syntax: KEY=VALUE, optional surrounding quotes, # comments."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key] = value
    return env


def systemd_env(unit_name: str) -> dict[str, str]:
    unit = systemd_unit(unit_name)
    env = {}
    for path in unit_values(unit, "Service", "EnvironmentFile"):
        env.update(env_file(DEPLOY / "systemd" / Path(path.lstrip("-")).name))  # /etc/ragqa/X.env ships as X.env
    for value in unit_values(unit, "Service", "Environment"):
        for assignment in shlex.split(value):
            key, val = assignment.split("=", 1)
            env[key] = val
    return env


def dockerfile() -> list[tuple[str, str]]:
    lines = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ").splitlines()
    out = []
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            out.append((instruction.upper(), rest.strip()))
    return out


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, rest in dockerfile():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(rest))
    return env


def vllm_args(argv: list[str]) -> tuple[str, dict[str, str | bool]]:
    """(model, {flag: value}) from `vllm serve MODEL --flag=value --flag value --switch`."""
    assert Path(argv[0]).name == "vllm" and argv[1] == "serve", argv[:2]
    argv = argv[2:]
    model, flags, i = None, {}, 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("--"):
            assert model is None, f"two positional arguments: {model!r}, {arg!r}"
            model = arg
        elif "=" in arg:
            key, value = arg.split("=", 1)
            flags[key] = value
        elif i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            flags[arg] = argv[i + 1]
            i += 1
        else:
            flags[arg] = True
        i += 1
    return model, flags


def all_vllm() -> dict[str, tuple[str, dict]]:
    svc = compose()["services"]["vllm"]
    container = k8s_container("vllm")
    exec_start = unit_values(systemd_unit("vllm.service"), "Service", "ExecStart")[0]
    return {"compose": vllm_args([*svc["entrypoint"], *svc["command"]]),
            "k8s": vllm_args([*container["command"], *container["args"]]),
            "systemd": vllm_args(shlex.split(exec_start))}


def all_ragqa_env() -> dict[str, dict[str, str]]:
    return {"compose": compose_env("ragqa"), "k8s": k8s_env("ragqa"), "systemd": systemd_env("ragqa.service"),
            "dockerfile": dockerfile_env()}


# -- the checks ------------------------------------------------------------------------------------
def test_every_file_parses_and_the_kustomization_lists_every_manifest():
    assert set(compose()["services"]) == {"vllm", "ragqa"}
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in k8s_docs() if d["kind"] != "Kustomization")
    assert kinds == [("Deployment", "ragqa"), ("Deployment", "vllm"), ("PersistentVolumeClaim", "ragqa-data"),
                     ("PersistentVolumeClaim", "vllm-hf-cache"), ("Secret", "ragqa-secrets"),
                     ("Service", "ragqa"), ("Service", "vllm")]
    kustomization = next(d for d in k8s_docs() if d["kind"] == "Kustomization")
    manifests = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == manifests
    for unit in ("vllm.service", "ragqa.service"):
        parsed = systemd_unit(unit)
        assert {"Unit", "Service", "Install"} <= set(parsed)
        assert unit_values(parsed, "Service", "ExecStart")
    assert dockerfile()[0][0] == "FROM"


@pytest.mark.parametrize("where", ["compose", "k8s", "systemd", "dockerfile"])
def test_every_ragqa_variable_names_a_setting_and_its_value_validates(where, monkeypatch, tmp_path):
    env = all_ragqa_env()[where]
    names = {k for k in env if k.startswith("RAGQA_")}
    assert names, f"{where} sets no RAGQA_ variable"
    unknown = names - setting_variables() - NON_FIELD_VARIABLES
    assert not unknown, f"{where} sets variables that are no setting: {sorted(unknown)}"
    settings = load_settings({k: env[k] for k in names}, monkeypatch, tmp_path)
    for name in names - NON_FIELD_VARIABLES:  # each value arrived where it was meant to
        path = name.removeprefix("RAGQA_").lower().split("__")
        value = settings
        for part in path:
            value = getattr(value, part)
        assert value is not None, f"{where}: {name} did not reach settings.{'.'.join(path)}"
    if where != "dockerfile":  # the image alone has no key: it must not start until one is given
        from ragqa.api.app import check_bind

        check_bind(settings.server.host, settings)  # a public bind always comes with API keys
        assert settings.llm.backend == "openai"


def test_a_wrong_variable_would_be_caught(monkeypatch, tmp_path):
    """The check above can fail: a typo is no setting, a malformed value does not validate."""
    assert "RAGQA_LLM_BASE_URL" not in setting_variables()  # one underscore: pydantic would ignore it
    with pytest.raises(ValueError):
        load_settings({"RAGQA_SERVER__API_KEYS": "{not json"}, monkeypatch, tmp_path)


def test_ports_agree_between_files():
    ragqa = all_ragqa_env()
    # ragqa's own port: setting, container port, service target, probes, compose mapping, Dockerfile EXPOSE
    port = int(ragqa["k8s"]["RAGQA_SERVER__PORT"])
    assert port == int(ragqa["compose"]["RAGQA_SERVER__PORT"]) == int(ragqa["systemd"]["RAGQA_SERVER__PORT"])
    assert port == int(ragqa["dockerfile"]["RAGQA_SERVER__PORT"])
    assert ("EXPOSE", str(port)) in dockerfile()
    container = k8s_container("ragqa")
    assert [p["containerPort"] for p in container["ports"]] == [port]
    assert k8s("Service", "ragqa")["spec"]["ports"][0]["targetPort"] == port
    assert container["readinessProbe"]["httpGet"]["port"] == port == container["livenessProbe"]["httpGet"]["port"]
    assert [m.rsplit(":", 1)[1] for m in compose()["services"]["ragqa"]["ports"]] == [str(port)]
    assert f":{port}/readyz" in " ".join(compose()["services"]["ragqa"]["healthcheck"]["test"])

    # vLLM's port: --port, what ragqa's base URL points at, container port, service, probes
    vllm = all_vllm()
    for where in ("compose", "k8s", "systemd"):
        vport = int(vllm[where][1]["--port"])
        url = urlparse(ragqa[where]["RAGQA_LLM__BASE_URL"])
        assert url.port == vport and url.path == "/v1", (where, url)
        expected_host = {"compose": "vllm", "k8s": "vllm", "systemd": "127.0.0.1"}[where]
        assert url.hostname == expected_host, f"{where}: ragqa points at {url.hostname}, vLLM is {expected_host}"
    assert "vllm" in compose()["services"] and k8s("Service", "vllm")["spec"]["ports"][0]["port"] == url.port
    vcontainer = k8s_container("vllm")
    assert [p["containerPort"] for p in vcontainer["ports"]] == [int(vllm["k8s"][1]["--port"])]
    assert k8s("Service", "vllm")["spec"]["ports"][0]["targetPort"] == int(vllm["k8s"][1]["--port"])


def test_data_paths_agree_between_files():
    ragqa = all_ragqa_env()
    home = ragqa["k8s"]["RAGQA_HOME"]
    assert home == ragqa["compose"]["RAGQA_HOME"] == ragqa["dockerfile"]["RAGQA_HOME"]
    assert ("VOLUME", f'["{home}"]') in dockerfile()
    assert [m["mountPath"] for m in k8s_container("ragqa")["volumeMounts"]] == [home]
    (volume,) = k8s("Deployment", "ragqa")["spec"]["template"]["spec"]["volumes"]
    claim = volume["persistentVolumeClaim"]["claimName"]
    assert k8s("PersistentVolumeClaim", claim)
    assert [v.split(":", 1)[1] for v in compose()["services"]["ragqa"]["volumes"]] == [home]
    assert compose()["services"]["ragqa"]["volumes"][0].split(":")[0] in compose()["volumes"]
    for where in ("k8s", "dockerfile"):  # the cache (the ONNX export) must be on the writable volume
        assert ragqa[where]["RAGQA_CACHE_DIR"].startswith(home + "/")
    unit = systemd_unit("ragqa.service")
    sys_home = ragqa["systemd"]["RAGQA_HOME"]
    assert sys_home == f"/var/lib/{unit_values(unit, 'Service', 'StateDirectory')[0]}"
    assert unit_values(unit, "Service", "WorkingDirectory") == [sys_home]
    assert unit_values(unit, "Service", "ReadWritePaths") == [sys_home]
    assert ragqa["systemd"]["RAGQA_CACHE_DIR"].startswith(sys_home + "/")  # ProtectHome: not ~/.cache
    for instruction, rest in dockerfile():  # what the image copies and installs exists in the repository
        if instruction == "COPY":
            for src in rest.split()[:-1]:
                assert (REPO / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
        if instruction == "RUN":
            for req in re.findall(r"-r (\S+)", rest):
                assert (REPO / req).exists(), f"Dockerfile installs {req}, which is not in the repository"


def test_vllm_flags_agree_with_each_other_with_ragqa_and_with_the_sizing_guide():
    vllm = all_vllm()
    ragqa = all_ragqa_env()
    models = {m.hf_id: m for m in sizing.MODELS.values()}
    first = None
    for where, (model, flags) in vllm.items():
        for flag in VLLM_FLAGS:
            assert flag in flags, f"{where}: vLLM started without {flag}"
        assert flags["--served-model-name"] == ragqa[where]["RAGQA_LLM__MODEL"], where
        util = float(flags["--gpu-memory-utilization"])
        assert 0.5 <= util <= 0.95, f"{where}: --gpu-memory-utilization {util}"
        assert model in models, f"{where}: {model} is not worked out in deploy/sizing.py"
        fit = sizing.Fit(models[model], min(sizing.GPUS.values()), util, int(flags["--max-model-len"]),
                         int(flags["--tensor-parallel-size"]))
        assert fit.max_model_len <= models[model].trained_context
        assert fit.fits, f"{where}: --max-model-len {fit.max_model_len} does not fit the smallest GPU in the guide"
        same = (model, {k: v for k, v in flags.items() if k not in ("--host",)})
        assert first is None or same == first, f"{where} runs vLLM differently from the others"
        first = same
    tp = int(vllm["k8s"][1]["--tensor-parallel-size"])
    gpu = k8s_container("vllm")["resources"]["limits"]["nvidia.com/gpu"]
    (device,) = compose()["services"]["vllm"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == tp == device["count"] and "gpu" in device["capabilities"]
    assert vllm["systemd"][1]["--host"] == "127.0.0.1"  # bare machine: vLLM only for ragqa beside it
    assert "VLLM_API_KEY" in compose_env("vllm") and "VLLM_API_KEY" in k8s_env("vllm")
    assert compose_env("vllm")["VLLM_API_KEY"] == compose_env("ragqa")["RAGQA_LLM__API_KEY"]
    assert k8s_env("vllm")["VLLM_API_KEY"] == k8s_env("ragqa")["RAGQA_LLM__API_KEY"]
    assert env_file(DEPLOY / "systemd" / "vllm.env")["VLLM_API_KEY"] == systemd_env("ragqa.service")["RAGQA_LLM__API_KEY"]


def test_vllm_is_probed_on_health():
    container = k8s_container("vllm")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health", probe
        assert container[probe]["httpGet"]["port"] == container["ports"][0]["containerPort"]
    test = " ".join(compose()["services"]["vllm"]["healthcheck"]["test"])
    assert "/health'" in test or test.endswith("/health")
    assert compose()["services"]["ragqa"]["depends_on"]["vllm"]["condition"] == "service_healthy"


def test_the_guide_shows_the_sizing_tables_and_explains_every_flag():
    readme = (DEPLOY / "README.md").read_text()
    assert sizing.model_table() in readme, "deploy/README.md's model table is stale: paste `python deploy/sizing.py`"
    assert sizing.fit_table() in readme, "deploy/README.md's GPU table is stale: paste `python deploy/sizing.py`"
    for flag in VLLM_FLAGS:
        assert f"`{flag}" in readme, f"deploy/README.md does not explain {flag}"
    for m in sizing.MODELS.values():
        assert m.params == {"Qwen2.5-7B-Instruct": 7_615_616_512, "Llama-3.1-8B-Instruct": 8_030_261_248}[m.name]
