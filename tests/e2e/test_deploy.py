"""The deployment artifacts, without a container engine: the wheel the Dockerfile's
builder stage builds, installed into a fresh virtual environment as its runtime stage
does, running the image's entrypoint (healthy, and a clean stop on SIGTERM); the
compose file's devnet, made with the command it runs; and the Kubernetes manifests,
checked for what Kubernetes requires and with their init script run for real."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.config import load

from nodekit import free_ports, wait_until

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]


def dockerfile() -> dict[str, Any]:
    """The Dockerfile's instructions that the tests replay (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    env: dict[str, str] = {}
    for line in lines:
        if line.startswith("ENV "):
            env.update(dict(item.split("=", 1) for item in shlex.split(line[4:])))
    return {
        "runs": [line[4:] for line in lines if line.startswith("RUN ")],
        "env": env,
        "entrypoint": yaml.safe_load(next(line[11:] for line in lines if line.startswith("ENTRYPOINT "))),
        "cmd": yaml.safe_load(next(line[4:] for line in lines if line.startswith("CMD "))),
        "healthcheck": yaml.safe_load(next(line for line in lines if line.startswith("HEALTHCHECK"))
                                      .split(" CMD ", 1)[1]),
        "expose": next(line[7:].split() for line in lines if line.startswith("EXPOSE ")),
        "user": next(line[5:] for line in lines if line.startswith("USER ")),
        "copies": [source for line in lines if line.startswith("COPY ") and "--from" not in line
                   for source in line[5:].split()[:-1]],
    }


def test_the_image_runs_the_node_from_the_wheel_the_builder_builds(tmp_path: Path) -> None:
    spec = dockerfile()
    assert spec["user"] == "bizra" and spec["expose"] == ["8080", "26656"]
    assert spec["entrypoint"] == ["bizra-node"] and spec["cmd"] == ["start"]
    # The builder has every package of the wheel to build it from.
    assert {"chain", "consensus", "storage", "p2p", "node", "pyproject.toml", "setup.py"} <= {
        *spec["copies"]}
    build = next(run for run in spec["runs"] if "pip wheel" in run)
    assert build == "python -m pip wheel --no-cache-dir --wheel-dir /wheels ."
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels), str(REPO)],
                   check=True, timeout=1_200)
    runtime = tmp_path / "runtime"
    venv.create(runtime, with_pip=True)
    python = runtime / "bin" / "python"
    install = next(run for run in spec["runs"] if "pip install" in run)
    assert "--no-index /wheels/*.whl" in install and "bizra-node version --require-compiled" in install
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index",
                    *map(str, wheels.glob("*.whl"))], check=True, timeout=600)
    subprocess.run([str(runtime / "bin" / "bizra-node"), "version", "--require-compiled"], check=True)

    rpc = free_ports(2)
    env = {**os.environ, **spec["env"], "BIZRA_HOME": str(tmp_path / "data"), "BIZRA_RPC_PORT": str(rpc),
           "BIZRA_P2P_PORT": str(rpc + 1), "PATH": f"{runtime / 'bin'}:{os.environ['PATH']}"}
    assert spec["env"]["BIZRA_HOME"] == "/data" and spec["env"]["BIZRA_RPC_HOST"] == "0.0.0.0"
    healthcheck = [str(python) if part == "python" else part.replace("8080", str(rpc))
                   for part in spec["healthcheck"]]
    with (tmp_path / "node.log").open("wb") as log:
        node = subprocess.Popen([*spec["entrypoint"], *spec["cmd"]], env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: subprocess.run(healthcheck, capture_output=True).returncode == 0, 90,
                   "the image's HEALTHCHECK passes", [tmp_path / "node.log"])
        node.send_signal(signal.SIGTERM)  # docker stop
        assert node.wait(timeout=15) == 0
    finally:
        if node.poll() is None:
            node.kill()
            node.wait()
    assert "stopped" in (tmp_path / "node.log").read_text()


def test_the_compose_devnet_is_made_by_the_command_it_runs(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    services = compose["services"]
    nodes = [f"node{i}" for i in range(5)]
    assert set(services) == {"devnet", *nodes}
    for name in nodes:
        service = services[name]
        assert service["command"] == ["start", "--home", "/data"]
        assert service["volumes"] == [f"{name}:/data"] and name in compose["volumes"]
        assert service["depends_on"]["devnet"]["condition"] == "service_completed_successfully"
        assert service["hostname"] == name

    script = services["devnet"]["command"][0].replace("/homes", str(tmp_path / "homes"))
    script = script.replace("chown -R 10001:10001", "true")  # not root here
    subprocess.run(["/bin/sh", "-c", script], check=True, timeout=120,
                   env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    homes = tmp_path / "homes"
    for i in range(5):
        config = load(homes / f"node{i}" / "config.toml", environ={})
        assert (homes / f"node{i}" / "validator_key.pem").exists() == (i < 4)
        assert config.p2p.host == "0.0.0.0" and config.p2p.external_addresses == (f"/dns4/node{i}/tcp/26656",)
        assert all(b.startswith("/dns4/node0/tcp/26656/p2p/") for b in config.p2p.bootnodes)
        assert len(config.p2p.bootnodes) == (0 if i == 0 else 1)


def published_port(spec: str) -> tuple[str, str, str]:
    """A compose short-syntax port, ``[HOST_IP:]HOST_PORT:CONTAINER_PORT``, as (host IP or
    "" for every interface, host port, container port)."""
    *host, host_port, container_port = spec.rsplit(":", 2)
    return (host[0] if host else "", host_port, container_port)


def test_the_compose_file_and_the_docker_examples_publish_rpc_on_loopback_only() -> None:
    """JSON-RPC is published on the host's 127.0.0.1 only, p2p on every interface, by the
    compose file and by the README's and the Dockerfile's ``docker run`` lines; each says
    how to expose RPC on purpose."""
    compose_file = REPO / "deploy" / "docker-compose.yml"
    services = yaml.safe_load(compose_file.read_text())["services"]
    published = {name: [published_port(spec) for spec in service.get("ports", [])]
                 for name, service in services.items()}
    rpc = {name: [p for p in ports if p[2] == "8080"] for name, ports in published.items()}
    nodes = [name for name, ports in rpc.items() if ports]
    assert nodes == [f"node{i}" for i in range(5)]
    assert all(host == "127.0.0.1" for name in nodes for host, _, _ in rpc[name]), rpc
    assert len({port for name in nodes for _, port, _ in rpc[name]}) == 5  # a host port each
    assert ("", "26656", "26656") in published["node0"]  # peers reach node0
    assert {p[2] for ports in published.values() for p in ports} == {"8080", "26656"}

    for path in (compose_file, REPO / "README.md", REPO / "Dockerfile"):
        text = path.read_text()
        assert "0.0.0.0:8080:8080" in text and "rpc_token" in text, f"{path} says how to expose RPC"
    for path in (REPO / "README.md", REPO / "Dockerfile"):
        runs = [line for line in path.read_text().splitlines() if re.search(r"docker run\b.*\s-p\s", line)]
        assert runs, path
        for line in runs:
            ports = re.findall(r"\s-p\s+(\S+?)`?(?=\s|$)", line)
            assert "127.0.0.1:8080:8080" in ports and "26656:26656" in ports, line
            assert all(published_port(p)[0] == "127.0.0.1" for p in ports if p.endswith(":8080")), line


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((REPO / "deploy" / "k8s").glob("*.yaml")):
        docs += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    return docs


def test_the_kubernetes_manifests_have_what_kubernetes_requires(tmp_path: Path) -> None:
    docs = manifests()
    for doc in docs:
        assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], doc
    by_kind = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    sts = by_kind[("StatefulSet", "bizra-validator")]
    spec = sts["spec"]
    labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= labels.items()
    headless = by_kind[("Service", spec["serviceName"])]
    assert headless["spec"]["clusterIP"] == "None"
    rpc_service = by_kind[("Service", "bizra-rpc")]
    assert rpc_service["spec"].get("type", "ClusterIP") == "ClusterIP"  # inside the cluster only
    assert all(s["spec"].get("type", "ClusterIP") == "ClusterIP" for s in docs if s["kind"] == "Service")
    for service in (headless, rpc_service):
        assert service["spec"]["selector"].items() <= labels.items()
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"p2p": 26656, "rpc": 8080}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "rpc"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "rpc"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/path"] == "/metrics"
    claims = {c["metadata"]["name"] for c in spec["volumeClaimTemplates"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for c in [container, *pod["initContainers"]]:
        for mount in c["volumeMounts"]:
            assert mount["name"] in claims | set(volumes), mount
    config_map = by_kind[("ConfigMap", volumes["config"]["configMap"]["name"])]
    assert ("Secret", volumes["keys"]["secret"]["secretName"]) in by_kind
    env = {e["name"]: e.get("value", "") for e in container["env"]}
    assert "$(POD_NAME).bizra-p2p" in env["BIZRA_P2P_EXTERNAL_ADDRESSES"]

    # The configuration loads as the node loads it, and the init script makes a home.
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "config.toml").write_text(config_map["data"]["config.toml"])
    assert load(tmp_path / "config" / "config.toml", environ={}).network == "bizra-testnet-001"
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "validator-2.pem").write_bytes(b"a key\n")
    (tmp_path / "keys" / "validator-2.pem").chmod(0o644)  # as a Secret's files are mounted
    script = re.sub(r"(?<![\w/.])/(data|config|keys)\b", lambda m: str(tmp_path / m.group(1)),
                    pod["initContainers"][0]["args"][0])
    subprocess.run(["/bin/sh", "-c", script], check=True, timeout=60,
                   env={**os.environ, "HOSTNAME": "bizra-validator-2",
                        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    data = tmp_path / "data"
    assert (data / "genesis.json").exists() and (data / "validator_key.pem").read_bytes() == b"a key\n"
    assert (data / "config.toml").read_text() == config_map["data"]["config.toml"]
    secrets = ("validator_key.pem", "node_key.pem", "rpc_token")
    assert all((data / name).stat().st_mode & 0o777 == 0o600 for name in secrets if name != "node_key.pem")
    # On a later start, after fsGroup made the volume's files group-readable, the secret
    # files are owner-only again.
    (data / "node_key.pem").write_bytes(b"a node key\n")
    for name in secrets:
        (data / name).chmod(0o660)
    subprocess.run(["/bin/sh", "-c", script], check=True, timeout=60,
                   env={**os.environ, "HOSTNAME": "bizra-validator-2",
                        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"})
    for name in secrets:
        assert (data / name).stat().st_mode & 0o777 == 0o600, name
