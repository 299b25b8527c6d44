"""The cluster recipes in cluster/ work as written.

The scripts run as a user runs them: from a bare shell (no venv on PATH) in a HOME of their own,
starting a real two-node Ray cluster on loopback with token auth on. The ray-up YAML and the
KubeRay manifests are validated against the schemas their tools validate them with: the
cluster-config schema inside Ray, and KubeRay's CRDs (copied into cluster/kuberay/crds/).
"""

from __future__ import annotations

import copy
import importlib.metadata
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import kubernetes_validate
import pytest
import ray  # noqa: F401  (first: it puts its bundled psutil on sys.path)
import yaml
from docker.utils.build import exclude_paths
from packaging.requirements import Requirement
from ports import RANDOM_WORKER_PORTS, free_port
from processes import kill_ours

import psutil  # noqa: E402  (ships inside Ray, importable once ray is)

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "cluster"
VENV = Path(sys.prefix)  # the project's environment the tests run in


def bare_env(home: Path, **extra: str) -> dict:
    """A fresh login shell's environment: no venv on PATH, no token, no Ray settings."""
    return {"HOME": str(home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", **extra}


def script(name: str, *args: str, env: dict, timeout: int = 180) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(CLUSTER / name), *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def tree(home: Path) -> set[int]:
    """Processes whose HOME is `home`, and all their descendants: Ray's agents and workers
    rename themselves (setproctitle), which blanks their /proc environ, so HOME alone misses
    them."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("HOME") == str(home):
                found.add(proc.pid)
                found.update(child.pid for child in proc.children(recursive=True))
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found - {os.getpid()}


def running(pids: set[int]) -> set[int]:
    """The pids still running (a zombie has exited; it only waits for its parent's wait)."""
    alive = set()
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.add(pid)
        except psutil.NoSuchProcess:
            pass
    return alive


def kill_all(pids: set[int]) -> None:
    for pid in running(pids):
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def node_options(temp: Path) -> list[str]:
    """1 CPU, its own Ray temp dir (short: Ray's socket paths must fit 107 bytes), and a free
    port for what Ray would otherwise take from a fixed default (the agent's 52365): tests and
    other users' Ray on this machine must not collide on it."""
    return [f"--dashboard-agent-listen-port={free_port()}", "--num-cpus=1", f"--temp-dir={temp}",
            *RANDOM_WORKER_PORTS]


@pytest.fixture(scope="module")
def temps():
    """Short temp dirs (under /tmp, not pytest's long paths), removed at the end."""
    made: list[Path] = []

    def make(prefix: str) -> Path:
        made.append(Path(tempfile.mkdtemp(prefix=prefix)))
        return made[-1]

    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# --- the environment lookup ------------------------------------------------------------------

def test_the_scripts_say_how_to_get_an_environment_when_there_is_none(tmp_path):
    result = script("start-head.sh", env=bare_env(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "no resnet-search environment found" in result.stderr
    assert ".ci/env" in result.stderr and "RESNET_SEARCH_VENV" in result.stderr
    wrong = script("join.sh", "127.0.0.1:1",
                   env=bare_env(tmp_path, RESNET_SEARCH_VENV=str(tmp_path / "nope")))
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
    assert f"RESNET_SEARCH_VENV={tmp_path / 'nope'} has no bin/ray" in wrong.stderr
    assert not (tmp_path / ".ray").exists()  # nothing was generated on the way out
    # Teardown needs no environment at all, and says when there is nothing to stop.
    stopped = script("stop.sh", env=bare_env(tmp_path))
    assert stopped.returncode == 0 and "no node started by the cluster scripts" in stopped.stdout


def test_a_worker_without_a_token_is_refused_before_any_process_starts(tmp_path):
    result = script("join.sh", "127.0.0.1:1",
                    env=bare_env(tmp_path, RESNET_SEARCH_VENV=str(VENV)))
    assert result.returncode == 2 and "no Ray token here" in result.stderr
    assert "Traceback" not in result.stderr and not tree(tmp_path)


def test_a_failed_start_tightens_the_token_and_leaves_nothing_behind(tmp_path):
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir()
    token.write_text("f" * 64)
    token.chmod(0o644)  # what `ray get-auth-token --generate` itself leaves
    result = script("start-head.sh", "--port=not-a-port",
                    env=bare_env(tmp_path, RESNET_SEARCH_VENV=str(VENV)))
    assert result.returncode == 2, result.stdout + result.stderr  # ray start's usage error
    assert "ray start failed (exit 2); nothing of this node is left running" in result.stderr
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert not tree(tmp_path)
    assert not list((tmp_path / ".resnet-search" / "cluster").glob("*/*"))  # no stale record


# --- a two-node cluster on loopback, started from bare shells --------------------------------

@pytest.fixture(scope="module")
def loop(tmp_path_factory, temps):
    """An unrelated Ray of the same user (plain `ray start`, same HOME) first, then the
    cluster: start-head.sh finding the venv through RESNET_SEARCH_VENV, join.sh through
    the cache directory `.ci/env` builds it in."""
    home = tmp_path_factory.mktemp("loop")
    cache = home / "cache"
    (cache / "resnet-search").mkdir(parents=True)
    (cache / "resnet-search" / "venv-0123456789abcdef").symlink_to(VENV)
    assert (VENV / ".complete").is_file(), "run the tests through `bash .ci/env pytest`"
    unrelated_env = {**os.environ, "HOME": str(home), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
                     "PATH": f"{VENV / 'bin'}:{os.environ['PATH']}"}
    everything: set[int] = set()
    try:
        other = subprocess.run(
            [str(VENV / "bin" / "ray"), "start", "--head", f"--port={free_port()}",
             "--node-ip-address=127.0.0.1", "--include-dashboard=false",
             f"--ray-client-server-port={free_port()}", "--disable-usage-stats",
             *node_options(temps("rs-other-"))],
            env={k: v for k, v in unrelated_env.items() if not k.startswith("RAY_AUTH")},
            capture_output=True, text=True)
        assert other.returncode == 0, other.stdout + other.stderr
        unrelated = tree(home)
        everything |= unrelated
        port, dashboard, head_temp = free_port(), free_port(), temps("rs-head-")
        head = script("start-head.sh", f"--port={port}", "--node-ip-address=127.0.0.1",
                      f"--dashboard-port={dashboard}", f"--ray-client-server-port={free_port()}",
                      *node_options(head_temp),
                      env=bare_env(home, RESNET_SEARCH_VENV=str(VENV)))
        everything |= tree(home)
        assert head.returncode == 0, head.stdout + head.stderr
        worker = script("join.sh", f"127.0.0.1:{port}", *node_options(temps("rs-worker-")),
                        env=bare_env(home, XDG_CACHE_HOME=str(cache)))
        everything |= tree(home)
        assert worker.returncode == 0, worker.stdout + worker.stderr
        cluster = tree(home) - unrelated
        yield SimpleNamespace(home=home, port=port, dashboard=dashboard, pids=cluster,
                              unrelated=unrelated, head_temp=head_temp)
    finally:
        script("stop.sh", env=bare_env(home))
        kill_all(everything | tree(home))
        kill_ours(home)


def test_every_node_gets_the_start_up_deadlines_of_a_local_launch(loop):
    """A node started on a loaded machine is slow, not broken: its Ray processes inherit the
    generous deadlines (search/run/raystart.py) from the scripts, as a local launch's do."""
    from search.run.raystart import DEADLINES

    raylets = [psutil.Process(pid) for pid in running(loop.pids)
               if psutil.Process(pid).name() == "raylet"]
    assert len(raylets) == 2  # the head's and the worker's
    for raylet in raylets:
        environ = raylet.environ()
        assert {name: environ.get(name) for name in DEADLINES} == DEADLINES


def test_the_head_makes_a_token_only_its_owner_can_read(loop):
    token = loop.home / ".ray" / "auth_token"
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    assert stat.S_IMODE(token.parent.stat().st_mode) == 0o700
    assert len(token.read_text().strip()) >= 32


def test_a_loopback_cluster_listens_on_loopback_only(loop):
    listening = []
    for pid in running(loop.pids):
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        listening += [c.laddr for c in conns if c.status == psutil.CONN_LISTEN]
    ports = {addr.port for addr in listening}
    # Not vacuous: the GCS and the Jobs API are among what was checked.
    assert {loop.port, loop.dashboard} <= ports, listening
    for addr in listening:
        ip = ipaddress.ip_address(addr.ip)
        ip = getattr(ip, "ipv4_mapped", None) or ip
        assert ip.is_loopback, f"a cluster process listens on {addr.ip}:{addr.port}"


def test_the_jobs_api_runs_a_job_for_the_token_holder_only(loop):
    url = f"http://127.0.0.1:{loop.dashboard}"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{url}/api/jobs/", timeout=30)
    assert refused.value.code == 401  # the Jobs API is up, and closed without the token
    # The job's driver joins the cluster it runs on (RAY_ADDRESS): both nodes, 1 CPU each.
    entry = "import ray; ray.init(); print('cluster CPUs', ray.cluster_resources()['CPU'])"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
           "HOME": str(loop.home), "RAY_AUTH_MODE": "token"}
    job = subprocess.run([str(VENV / "bin" / "ray"), "job", "submit", "--address", url, "--",
                          "python", "-c", entry], env=env, capture_output=True, text=True)
    assert job.returncode == 0, job.stdout + job.stderr
    assert "cluster CPUs 2.0" in job.stdout and "succeeded" in job.stdout + job.stderr
    # Ray's job CLI sends the token (~/.ray/auth_token here) only in token mode: what
    # cluster/README.md step 4 tells people who use `ray job list/status/logs`.
    listing = [str(VENV / "bin" / "ray"), "job", "list", "--address", url]
    plain = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"}
    without = subprocess.run(listing, env=plain, capture_output=True, text=True, timeout=180)
    assert without.returncode != 0, without.stdout + without.stderr
    assert "no authentication token was found" in without.stdout + without.stderr
    listed = subprocess.run(listing, env=env, capture_output=True, text=True)
    assert listed.returncode == 0 and "SUCCEEDED" in listed.stdout, listed.stdout + listed.stderr


def test_status_reports_the_cluster_without_a_traceback(loop):
    result = script("status.sh", env=bare_env(loop.home, RESNET_SEARCH_VENV=str(VENV)))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "0.0/2.0 CPU" in result.stdout  # head and worker, nothing of the unrelated Ray


def test_stop_stops_the_cluster_and_nothing_else(loop):
    assert running(loop.pids) and running(loop.unrelated)
    result = script("stop.sh", env=bare_env(loop.home))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("stopped node") == 2
    assert not running(loop.pids), [psutil.Process(p).cmdline() for p in running(loop.pids)]
    assert running(loop.unrelated) == loop.unrelated  # the user's other Ray is untouched
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", loop.port), timeout=5).close()
    # The address `ray start` left for a plain ray.init() to join is gone with the cluster.
    assert not (loop.head_temp / "ray_current_cluster").exists()
    again = script("stop.sh", env=bare_env(loop.home))
    assert again.returncode == 0 and "no node started by the cluster scripts" in again.stdout


# --- a blocking start stops its node when it is stopped --------------------------------------

@pytest.mark.ray
def test_sigterm_to_a_blocking_head_stops_every_process_it_started(tmp_path, temps):
    dashboard, temp = free_port(), temps("rs-block-")
    started = subprocess.Popen(
        ["bash", str(CLUSTER / "start-head.sh"), "--block", f"--port={free_port()}",
         "--node-ip-address=127.0.0.1", f"--dashboard-port={dashboard}",
         f"--ray-client-server-port={free_port()}", *node_options(temp)],
        env=bare_env(tmp_path, RESNET_SEARCH_VENV=str(VENV)), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True)
    pids: set[int] = set()
    try:
        while True:  # as long as the start lives: a loaded machine only slows it down
            try:
                socket.create_connection(("127.0.0.1", dashboard), timeout=2).close()
                break
            except OSError:
                assert started.poll() is None, started.stderr.read()
                time.sleep(1)
        time.sleep(2)  # the raylet's agents start after the dashboard
        pids = tree(tmp_path) - {started.pid}
        assert len(pids) > 3  # GCS, raylet, dashboard, agents: the proof below is not vacuous
        started.send_signal(signal.SIGTERM)
        assert started.wait(timeout=60) == 143
        assert not running(pids), [psutil.Process(p).cmdline() for p in running(pids)]
        state = tmp_path / ".resnet-search" / "cluster"
        assert not list(state.glob("*/head-*"))  # nothing left for stop.sh to do
        assert not (temp / "ray_current_cluster").exists()
    finally:
        started.kill()
        kill_all(pids | tree(tmp_path))
        kill_ours(tmp_path)


# --- ray up: the cluster launcher's own schema -----------------------------------------------

RAY_SCHEMA = Path(ray.__file__).parent / "autoscaler" / "ray-schema.json"


def ray_up_config() -> dict:
    return yaml.safe_load((CLUSTER / "ray-up.yaml").read_text())


def test_the_ray_up_yaml_is_a_valid_cluster_config():
    from ray.autoscaler._private.util import fillout_defaults, validate_config

    config = ray_up_config()
    jsonschema.validate(config, json.loads(RAY_SCHEMA.read_text()))
    validate_config(fillout_defaults(copy.deepcopy(config)))  # what `ray up` runs on it
    types = config["available_node_types"]
    assert types[config["head_node_type"]]["resources"].get("GPU", 0) == 0
    assert [t for t in types.values() if t["resources"].get("GPU", 0) >= 1]
    # The project is installed on every node and the nodes start through the scripts (token
    # auth on, Jobs API on loopback), with the token mounted rather than written into the YAML.
    assert any("pip install" in c and "~/resnet-search" in c for c in config["setup_commands"])
    assert config["file_mounts"]["~/resnet-search"] == "."
    assert "~/.ray/auth_token" in config["file_mounts"]
    assert any("cluster/start-head.sh" in c for c in config["head_start_ray_commands"])
    assert any("cluster/join.sh $RAY_HEAD_IP:6379" in c
               for c in config["worker_start_ray_commands"])
    assert "dashboard-host" not in json.dumps(config)  # the script's 127.0.0.1 stays


@pytest.mark.parametrize("break_it, said", [
    (lambda c: c["available_node_types"]["gpu_a10g"]["resources"].update(GPU="one"),
     "'one' is not of type 'integer'"),
    (lambda c: c.pop("provider"), "'provider' is a required property"),
    (lambda c: c.update(setup_commands="pip install ."), "is not of type 'array'"),
    (lambda c: c.update(head_start_ray_commmands=[]), "'head_start_ray_commmands' was unexpected"),
])
def test_a_broken_ray_up_yaml_fails_the_schema(break_it, said):
    config = ray_up_config()
    break_it(config)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(said)):
        jsonschema.validate(config, json.loads(RAY_SCHEMA.read_text()))


# --- KubeRay: the CRDs' schemas, strict like `kubectl apply --validate=strict` ---------------

CRDS = CLUSTER / "kuberay" / "crds"


def strict(schema):
    """The CRD schema with unknown fields rejected, as the API server's strict field validation
    does (a plain jsonschema check would accept a misspelt field and KubeRay would ignore it)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if ("properties" in schema and "additionalProperties" not in schema
                and not schema.get("x-kubernetes-preserve-unknown-fields")):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


def crd_schema(file: str) -> dict:
    # The C loader: the two CRDs are 2 MB of YAML.
    crd = yaml.load((CRDS / file).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return strict(version["schema"]["openAPIV3Schema"])


def manifest(file: str) -> dict:
    return yaml.safe_load((CLUSTER / "kuberay" / file).read_text())


@pytest.fixture(scope="module")
def schemas():
    # Validators built once: jsonschema.validate() would re-check the 2 MB schema every call.
    return {kind: jsonschema.Draft7Validator(crd_schema(file)) for kind, file in
            [("RayCluster", "ray.io_rayclusters.yaml"), ("RayJob", "ray.io_rayjobs.yaml")]}


def validate(doc: dict, schemas: dict) -> None:
    assert doc["apiVersion"] == "ray.io/v1"
    schemas[doc["kind"]].validate(doc)


def test_the_crd_copies_say_where_they_come_from():
    assert (CRDS / "LICENSE").read_text().lstrip().startswith("Apache License")
    readme = (CRDS / "README.md").read_text()
    assert "ray-project/kuberay" in readme and "feeaf72facab4881ba2b179248bb67315634e229" in readme


def test_the_kuberay_manifests_match_the_crds(schemas):
    cluster, job = manifest("raycluster.yaml"), manifest("rayjob.yaml")
    validate(cluster, schemas)
    validate(job, schemas)
    for spec in (cluster["spec"], job["spec"]["rayClusterSpec"]):
        assert spec["authOptions"] == {"mode": "token"}
        gpus = [g for g in spec["workerGroupSpecs"]
                if int(g["template"]["spec"]["containers"][0]["resources"]["limits"]
                       .get("nvidia.com/gpu", 0)) >= 1]
        assert gpus
    # The job runs the product's own command on the spec it mounts.
    assert job["spec"]["entrypoint"] == "resnet-search launch /config/spec.yaml"
    head = job["spec"]["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    assert {"name": "spec", "mountPath": "/config", "readOnly": True} in \
        head["containers"][0]["volumeMounts"]
    # One cluster shape: the standalone cluster and the job's cluster do not drift apart.
    assert cluster["spec"]["workerGroupSpecs"] == job["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert cluster["spec"]["rayVersion"] == job["spec"]["rayClusterSpec"]["rayVersion"]


# --- one Ray version: pyproject.toml's pin, in every file that installs or declares Ray ---------

# What names a Ray version in a recipe: a pip requirement, the base image's tag, a manifest's
# rayVersion.
RAY_VERSION_SITES = [r"\bray(?:\[[^\]]*\])?\s*==\s*([\w.]+)", r"rayproject/ray:(\d[\w.]*?)-",
                     r"rayVersion:\s*\"?([\w.]+)"]
# Every file that installs Ray or declares its version, besides pyproject.toml (the GPU run's
# wheels are pinned "at the versions this project is tested with" too).
RAY_PINNED = ["cluster/kuberay/Dockerfile", "cluster/kuberay/raycluster.yaml",
              "cluster/kuberay/rayjob.yaml", "cluster/ray-up.yaml", "bench/gpu/carry.txt"]


def ray_versions(text: str) -> set[str]:
    """The Ray versions a recipe names (pure)."""
    return {found for site in RAY_VERSION_SITES for found in re.findall(site, text)}


def pinned_ray() -> str:
    """The one Ray version of the project: pyproject.toml's exact pin."""
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    ray_req = next(Requirement(d) for d in deps if Requirement(d).name == "ray")
    (spec,) = ray_req.specifier  # one clause: an exact version, not a range
    assert spec.operator == "==", f"pyproject pins Ray as {spec}: give one exact version"
    return spec.version


@pytest.mark.parametrize("text, versions", [
    ('pip install ~/resnet-search "ray[default,tune]==2.60.0"', {"2.60.0"}),
    ("FROM rayproject/ray:2.59.0-py311-gpu", {"2.59.0"}),
    ('  rayVersion: "2.58.1"', {"2.58.1"}),
    ("ray==2.59.0\noptuna==5.1.0", {"2.59.0"}),
    ("pip install ~/resnet-search", set()),
    ("xray==1.0  # another package", set()),
])
def test_every_way_a_recipe_names_a_ray_version_is_found(text, versions):
    assert ray_versions(text) == versions


def test_the_cluster_runs_the_ray_version_the_project_pins():
    """Ray refuses a driver or node of another version than the cluster's: the clusters these
    recipes build run pyproject's pin, which is the version the tests ran on."""
    pin = pinned_ray()
    assert importlib.metadata.version("ray") == pin  # this environment (a stale venv fails here)
    for name in RAY_PINNED:
        assert ray_versions((ROOT / name).read_text()) <= {pin}, name
    for name in ["cluster/kuberay/Dockerfile", "cluster/kuberay/raycluster.yaml",
                 "cluster/kuberay/rayjob.yaml", "bench/gpu/carry.txt"]:
        assert ray_versions((ROOT / name).read_text()) == {pin}, name  # it does name one
    # The installs take Ray from the project's own requirement, so they cannot drift from it.
    dockerfile = (CLUSTER / "kuberay" / "Dockerfile").read_text()
    assert "pip install --no-cache-dir /home/ray/resnet-search" in dockerfile
    assert any(c.startswith("~/rs-venv/bin/pip install -q ~/resnet-search")
               for c in ray_up_config()["setup_commands"])


# --- the image's build context: .dockerignore ---------------------------------------------------

def docker_context(root: Path) -> set[str]:
    """The files `docker build -f cluster/kuberay/Dockerfile ROOT` sends, as the Docker SDK
    computes them from ROOT/.dockerignore (its own matcher and comment handling)."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
    return {p for p in exclude_paths(str(root), patterns, "cluster/kuberay/Dockerfile")
            if (root / p).is_file()}


def test_the_image_gets_the_project_and_nothing_of_a_working_checkout(tmp_path):
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    litter = [".git/HEAD", ".git/objects/ab/cdef", "runs/digits-demo/experiment.json",
              "mlflow.db", "mlflow.db.lock", "mlruns/0/meta.yaml", "mlartifacts/1/model.pt",
              ".venv/bin/python", "search/cli/__pycache__/main.cpython-311.pyc", "best.yaml",
              "digits-demo-retrained/model.pt", ".whl/ray-2.59.0-cp312.whl",
              "resnet_search.egg-info/PKG-INFO", ".pytest_cache/v/cache/lastfailed",
              "digits-demo-report/index.html", "data/cifar-10-batches-py/data_batch_1"]
    for name in tracked + litter:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).touch()
    sent = docker_context(tmp_path)
    assert not sent & set(litter), sorted(sent & set(litter))
    # what `pip install` builds the project from, and the shipped specs
    needed = {n for n in tracked if n.startswith(("resnet_core/", "search/", "spaces/"))}
    assert needed | {"pyproject.toml", "README.md", "cluster/kuberay/Dockerfile"} <= sent
    assert not {n for n in sent if n.startswith(("tests/", "bench/", ".ci/"))}


# --- the manifests beside the CRDs: the PVC, the service account, the NetworkPolicy -----------

PLAIN = ["pvc.yaml", "serviceaccount.yaml", "networkpolicy.yaml"]


def k8s_validate(doc: dict) -> None:
    """Kubernetes' own schema of the object's kind and apiVersion (kubernetes-validate ships
    them), strict: an unknown or misspelt field is an error, as with --validate=strict."""
    kubernetes_validate.validate(doc, kubernetes_validate.latest_version(), strict=True)


@pytest.mark.parametrize("file", PLAIN)
def test_the_plain_manifests_match_kubernetes_schemas(file):
    doc = manifest(file)
    assert {"apiVersion", "kind", "metadata"} <= set(doc) and doc["metadata"]["name"]
    k8s_validate(doc)


def pod_templates(doc: dict) -> list[tuple[str, dict]]:
    """(where, pod template) of every pod a RayCluster or RayJob manifest makes."""
    cluster = doc["spec"].get("rayClusterSpec", doc["spec"])
    found = [("head", cluster["headGroupSpec"]["template"])]
    found += [(g["groupName"], g["template"]) for g in cluster["workerGroupSpecs"]]
    if "submitterPodTemplate" in doc["spec"]:
        found.append(("submitter", doc["spec"]["submitterPodTemplate"]))
    return found


def matches(selector: dict, labels: dict) -> bool:
    return all(labels.get(k) == v for k, v in selector["matchLabels"].items())


@pytest.mark.parametrize("file", ["raycluster.yaml", "rayjob.yaml"])
def test_every_pod_runs_unprivileged_as_a_user(file):
    doc = manifest(file)
    cluster = doc["spec"].get("rayClusterSpec", doc["spec"])
    hardened = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                "runAsNonRoot": True}
    assert cluster["autoscalerOptions"]["securityContext"] == hardened
    for where, template in pod_templates(doc):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, where
        assert pod["securityContext"]["runAsUser"] != 0, where
        for container in pod["containers"]:
            assert container["securityContext"] == hardened, (where, container["name"])


@pytest.mark.parametrize("file", ["raycluster.yaml", "rayjob.yaml"])
def test_the_pods_mount_the_claim_and_account_shipped_beside_them(file):
    claim = manifest("pvc.yaml")
    account = manifest("serviceaccount.yaml")
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]  # every node mounts it at once
    assert account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].startswith(
        "arn:aws:iam::")
    for where, template in pod_templates(manifest(file)):
        pod = template["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"], where
        if where == "submitter":
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["shared"]["persistentVolumeClaim"]["claimName"] == \
            claim["metadata"]["name"], where
        for volume in volumes.values():  # a memory-backed volume is capped, or it eats the pod
            if volume.get("emptyDir", {}).get("medium") == "Memory":
                assert volume["emptyDir"]["sizeLimit"], where


def test_the_network_policy_lets_only_the_search_pods_and_one_namespace_reach_the_head():
    policy = manifest("networkpolicy.yaml")["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    head_ports = {6379, 8265, 10001}
    for file in ("raycluster.yaml", "rayjob.yaml"):
        for where, template in pod_templates(manifest(file)):
            labels = template["metadata"]["labels"]
            # KubeRay adds ray.io/node-type to the pods it makes: the policy selects the heads
            assert matches(policy["podSelector"], {**labels, "ray.io/node-type": where}) == (
                where == "head"), (file, where)
            # the cluster's own pods (and the RayJob's submitter) match the first rule's peers
            assert matches(policy["ingress"][0]["from"][0]["podSelector"], labels), (file, where)
            if where == "head":
                ports = {p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
                assert ports == head_ports, file
    own, other = policy["ingress"]
    assert set(own) == {"from"} and list(own["from"][0]) == ["podSelector"]
    assert list(other["from"][0]) == ["namespaceSelector"]  # one namespace, named
    assert list(other["from"][0]["namespaceSelector"]["matchLabels"]) == [
        "kubernetes.io/metadata.name"]
    assert {p["port"] for p in other["ports"]} == head_ports


def test_a_rayjob_has_a_deadline():
    assert manifest("rayjob.yaml")["spec"]["activeDeadlineSeconds"] > 0


@pytest.mark.parametrize("file, break_it, said", [
    ("networkpolicy.yaml", lambda d: d["spec"].update(podSelectr=d["spec"].pop("podSelector")),
     "'podSelectr' was unexpected"),
    ("networkpolicy.yaml", lambda d: d["spec"]["ingress"][1]["ports"][0].update(port=[6379]),
     "is not valid under any of the given schemas"),
    ("pvc.yaml", lambda d: d["spec"].update(accessModes="ReadWriteMany"),
     "'ReadWriteMany' is not of type 'array'"),
    ("networkpolicy.yaml", lambda d: d["spec"]["podSelector"].update(
        matchExpressions=[{"key": "ray.io/node-type"}]), "'operator' is a required property"),
    ("serviceaccount.yaml", lambda d: d["metadata"].update(annotations=["role"]),
     "is not of type 'object'"),
])
def test_a_broken_plain_manifest_fails_its_schema(file, break_it, said):
    doc = manifest(file)
    break_it(doc)
    with pytest.raises(kubernetes_validate.ValidationError, match=re.escape(said)):
        k8s_validate(doc)


@pytest.mark.parametrize("file, field, wrong", [
    ("pvc.yaml", "kind", "PersistentVolumeClam"), ("pvc.yaml", "apiVersion", "v2"),
    ("networkpolicy.yaml", "apiVersion", "networking.k8s.io/v1beta1"),  # removed in 1.16
])
def test_a_kind_or_api_version_kubernetes_does_not_serve_is_refused(file, field, wrong):
    doc = manifest(file)
    doc[field] = wrong
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        k8s_validate(doc)


@pytest.mark.parametrize("file, break_it, said", [
    ("raycluster.yaml", lambda d: d["spec"].update(enableInTreeAutoscaling="yes"),
     "'yes' is not of type 'boolean'"),
    ("raycluster.yaml", lambda d: d["spec"]["authOptions"].update(mode="password"),
     "'password' is not one of ['disabled', 'token']"),
    ("raycluster.yaml", lambda d: d["spec"].pop("headGroupSpec"),
     "'headGroupSpec' is a required property"),
    ("raycluster.yaml", lambda d: d["spec"]["workerGroupSpecs"][0].pop("groupName"),
     "'groupName' is a required property"),
    ("raycluster.yaml", lambda d: d["spec"].update(authOption={"mode": "token"}),
     "'authOption' was unexpected"),  # a misspelt field: strict validation rejects it
    ("rayjob.yaml", lambda d: d["spec"].update(entrypoint=["resnet-search", "launch"]),
     "is not of type 'string'"),
    ("rayjob.yaml", lambda d: d["spec"].update(shutdownAfterJobFinish=True),
     "'shutdownAfterJobFinish' was unexpected"),
    ("rayjob.yaml", lambda d: d["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
     .update(maxReplicas="8"), "'8' is not of type 'integer'"),
])
def test_a_broken_manifest_fails_the_crd_schema(schemas, file, break_it, said):
    doc = manifest(file)
    break_it(doc)
    with pytest.raises(jsonschema.ValidationError, match=re.escape(said)):
        validate(doc, schemas)


# --- the README walks through files that exist -----------------------------------------------

def test_the_cluster_readme_names_only_files_that_exist():
    readme = (CLUSTER / "README.md").read_text()
    named = set(re.findall(r"cluster/[\w./-]+\.(?:sh|yaml|md|py)", readme))
    assert {"cluster/stop.sh", "cluster/ray-up.yaml", "cluster/kuberay/rayjob.yaml",
            "cluster/mlflow-server.md"} <= named
    missing = [n for n in named if not (ROOT / n).exists() and n != "cluster/mlflow-server.md"]
    assert not missing, missing
