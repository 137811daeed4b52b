"""docker/compose.yaml parses, pins its images, and every file it (and the TF Serving configs) refer to exists.

A Docker engine is not needed; the one test that asks `docker compose` itself skips cleanly without one.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

DOCKER = Path(__file__).resolve().parent.parent / "docker"
COMPOSE = DOCKER / "compose.yaml"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def flags(service: dict) -> dict[str, str]:
    out = {}
    for arg in service["command"]:
        key, _, value = arg.partition("=")
        out[key] = value
    return out


def test_tfserving_service(compose):
    svc = compose["services"]["tfserving"]
    image = svc["image"]
    assert re.fullmatch(r"tensorflow/serving:\d+\.\d+\.\d+", image), image  # pinned, never :latest
    ports = {p.rsplit(":", 1)[-1]: p for p in svc["ports"]}
    assert ports["8501"].endswith("8501:8501") and ports["8500"].endswith("8500:8500")
    args = flags(svc)
    assert args["--rest_api_enable_cors_support"] == "true"
    assert args["--model_config_file"] == "/config/models.config"
    assert args["--monitoring_config_file"] == "/config/monitoring.config"
    assert "--enable_batching" not in args


def test_batching_profile(compose):
    svc = compose["services"]["tfserving-batching"]
    assert svc["profiles"] == ["batching"]
    assert svc["image"] == compose["services"]["tfserving"]["image"]
    args = flags(svc)
    assert args["--enable_batching"] == "true"
    assert args["--batching_parameters_file"] == "/config/batching.config"


def test_mounted_host_paths_exist_or_are_generated(compose):
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            host, container = volume.split(":")[:2]
            path = (DOCKER / host).resolve()
            if host == "./models":
                assert "models/" in (DOCKER / ".gitignore").read_text()  # written by export_models.py
                continue
            assert path.exists(), f"{name}: {host} -> {path} does not exist"
    for service in ("tfserving", "tfserving-batching"):
        config = {v.split(":")[1]: (DOCKER / v.split(":")[0]) for v in compose["services"][service]["volumes"]}
        for key, value in flags(compose["services"][service]).items():
            if value.startswith("/config/"):
                assert (config["/config"] / value.removeprefix("/config/")).is_file(), (key, value)


def test_models_config_matches_the_demo_models():
    from tfsbench.server.models import DEMO_LABELS, DEMO_MODEL_TYPES, DEMO_VERSIONS

    text = (DOCKER / "config" / "models.config").read_text()
    names = re.findall(r'name:\s*"(\w+)"', text)
    assert names == [cls.name for cls in DEMO_MODEL_TYPES]
    for name in names:
        assert f'base_path: "/models/{name}"' in text
    policies = re.findall(r"specific \{([^}]*)\}", text)
    assert len(policies) == 3
    for policy in policies:
        assert [int(v) for v in re.findall(r"versions:\s*(\d+)", policy)] == list(DEMO_VERSIONS)
    (label, version), = DEMO_LABELS.items()
    assert text.count(f'version_labels {{ key: "{label}" value: {version} }}') == 3


def test_monitoring_config_enables_prometheus_at_the_default_path():
    from tfsbench.server.app import METRICS_PATH

    text = (DOCKER / "config" / "monitoring.config").read_text()
    assert re.search(r"enable:\s*true", text)
    assert f'path: "{METRICS_PATH}"' in text


def test_batching_config_is_what_tfsbench_serve_reads():
    from tfsbench.server.options import parse_batching_file

    options = parse_batching_file(str(DOCKER / "config" / "batching.config"))
    assert options.max_batch_size == 32 and options.num_batch_threads == 2


def test_locust_services(compose):
    master = compose["services"]["locust-master"]
    worker = compose["services"]["locust-worker"]
    assert master["profiles"] == worker["profiles"] == ["locust"]
    assert master["command"].startswith("-f /mnt/locustfiles/tfserving.py --master")
    assert "-H http://tfserving:8501" in master["command"]
    assert worker["command"] == "-f /mnt/locustfiles/tfserving.py --worker --master-host locust-master"
    assert "replicas" not in worker.get("deploy", {})  # scaled with --scale locust-worker=N
    dockerfile = DOCKER / master["build"]["dockerfile"]
    assert re.search(r"^FROM locustio/locust:\d+\.\d+\.\d+$", dockerfile.read_text(), re.M)
    assert (DOCKER / ".." / "locustfiles" / "tfserving.py").is_file()


@pytest.mark.docker
def test_docker_compose_config_validates():
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("no docker CLI on this machine")
    probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip("docker compose is not available")
    result = subprocess.run(
        [docker, "compose", "-f", str(COMPOSE), "--profile", "batching", "--profile", "locust", "config", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
