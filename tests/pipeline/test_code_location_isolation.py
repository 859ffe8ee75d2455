"""The Dagster code location is a production install of its own: no local cloud, no tools, no
network while it loads."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPOSITORY = Path(__file__).resolve().parents[2]
#: What only the `local` extra installs, and the packages the code location must never load.
LOCAL_ONLY = ("moto", "amqtt", "paho", "matplotlib")
NEVER_LOADED = (*LOCAL_ONLY, "platform_tools", "benchmarks", "tests")

# A fresh interpreter in which the `local` extra is not installed (its modules cannot be
# imported) and no socket can connect anywhere, then the definitions are built.
_SCRIPT = """
import importlib.abc, json, socket, sys

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {local_only!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())

def no_network(*args, **kwargs):
    raise OSError("the code location tried to reach the network while loading")

socket.socket.connect = no_network
socket.create_connection = no_network

from pipeline_platform.definitions import build_definitions

definitions = build_definitions()
keys = definitions.resolve_asset_graph().get_all_asset_keys()
loaded = sorted({{m.split(".")[0] for m in sys.modules}})
local_cloud = sorted(m for m in sys.modules if m.startswith("local_cloud"))
print(json.dumps({{"assets": len(keys), "loaded": loaded, "local_cloud": local_cloud}}))
"""


@pytest.mark.parametrize("environment", ["local", "aws"])
def test_definitions_build_without_the_local_extra_and_without_network(environment: str) -> None:
    """GIVEN a production install (no moto, amqtt, paho-mqtt or matplotlib) and no reachable AWS
    endpoint WHEN the code location's definitions are built (as `dagster dev` or a deployment
    loads them) THEN they build, with every asset, and load neither the local cloud (beyond its
    defaults), the tools, nor any local-only library."""
    script = _SCRIPT.format(local_only=LOCAL_ONLY)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(REPOSITORY),
        "PLATFORM_ENV": environment,
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPOSITORY,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])

    assert report["assets"] >= 15
    assert set(report["loaded"]).isdisjoint(NEVER_LOADED)
    assert report["local_cloud"] in ([], ["local_cloud", "local_cloud.defaults"])


def test_a_plain_install_does_not_pull_in_the_local_cloud_or_the_tools_dependencies() -> None:
    """GIVEN the project's metadata WHEN installed without extras THEN none of the local
    cloud's or the demo's libraries comes with it, and the `local` extra names each of them,
    moto pinned to the minor version its patches were written against."""
    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"]).lower()
    local = project["optional-dependencies"]["local"]

    for library in ("moto", "amqtt", "paho-mqtt", "matplotlib"):
        assert library not in base
        assert any(req.lower().startswith(library) for req in local), library
    (moto,) = [req for req in local if req.startswith("moto")]
    assert "<5.3" in moto and ">=5.2" in moto
