"""The carry of a GPU run: what bench/gpu/build_carry.py built (its manifest, committed) fits in
what one command of the device tool carries together with the working tree; it is what
carry.txt pins and nothing the GPU image already has; the folder is ignored by git; and a
repacked wheel (members stripped, LZMA) still installs with pip, executables executable."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

from bench.gpu import build_carry
from bench.gpu.run import canonical

ROOT = Path(__file__).resolve().parents[2]
GPU = ROOT / "bench" / "gpu"


def manifest() -> dict:
    return json.loads(build_carry.MANIFEST.read_text())


def working_tree_bytes() -> int:
    """What travels with every command: tracked files and untracked files git does not ignore
    (the carried folder is counted apart)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard"], cwd=ROOT, capture_output=True, check=True)
    names = {name for name in listed.stdout.decode().split("\0") if name}
    return sum((ROOT / name).stat().st_size for name in names if (ROOT / name).is_file())


def test_the_carry_and_the_working_tree_fit_in_one_command():
    carried, tree = manifest()["total_bytes"], working_tree_bytes()
    print(f"carry {carried / 2**20:.1f} MiB + working tree {tree / 2**20:.1f} MiB = "
          f"{(carried + tree) / 2**20:.1f} MiB of {build_carry.LIMIT / 2**20:.0f} MiB")
    assert carried + tree <= build_carry.LIMIT


def test_the_manifest_is_what_carry_txt_pins_one_version_each():
    found = manifest()
    build_carry.check_pins(found)  # raises SystemExit on a difference
    dists = [w["dist"] for w in found["wheels"]]
    assert len(dists) == len(set(dists))
    assert all(w["file"].endswith(".whl") for w in found["wheels"])
    ray = next(w for w in found["wheels"] if w["dist"] == "ray")
    assert "ray/jars/" in ray["stripped"] and ray["removed_files"] > 0
    assert "cp312" in ray["file"] and "x86_64" in ray["file"]


def test_nothing_carried_is_already_on_the_gpu_image():
    image = {canonical(line) for line in (GPU / "image-packages.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")}
    carried = {name for name, _ in build_carry.requirements()}
    assert len(image) > 150 and "torch" in image and "ray" not in image
    assert carried and not carried & image


def test_the_carry_folder_is_ignored_by_git():
    out = subprocess.run(["git", "check-ignore", "-q", ".whl/ray-2.59.0-cp312.whl"], cwd=ROOT)
    assert out.returncode == 0


def make_wheel(path: Path) -> Path:
    """A small wheel with a folder to strip and an executable, as Ray's has."""
    wheel = path / "demo-1.0-py3-none-any.whl"
    members = {"demo/__init__.py": (b"VALUE = 42\n", 0o644),
               "demo/bin/tool": (b"#!/bin/sh\necho tool\n", 0o755),
               "demo/jars/big.jar": (b"x" * 10_000, 0o644),
               "demo-1.0.dist-info/METADATA": (b"Metadata-Version: 2.1\nName: demo\n"
                                               b"Version: 1.0\n", 0o644),
               "demo-1.0.dist-info/WHEEL": (b"Wheel-Version: 1.0\nGenerator: test\n"
                                            b"Root-Is-Purelib: true\nTag: py3-none-any\n",
                                            0o644)}
    record = "".join(f"{name},,\n" for name in members) + "demo-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, (data, mode) in {**members, "demo-1.0.dist-info/RECORD": (record.encode(),
                                                                            0o644)}.items():
            info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            zout.writestr(info, data)
    return wheel


def test_a_repacked_wheel_loses_what_is_stripped_and_still_installs(tmp_path):
    src = make_wheel(tmp_path)
    (tmp_path / "out").mkdir()
    dst = tmp_path / "out" / src.name
    info = build_carry.repack(src, dst, ("demo/jars/",))
    assert info == {"stripped": ["demo/jars/"], "removed_files": 1}
    with zipfile.ZipFile(dst) as packed:
        names = packed.namelist()
        assert "demo/jars/big.jar" not in names
        assert all(i.compress_type == zipfile.ZIP_LZMA for i in packed.infolist())
        assert b"demo/jars" not in packed.read("demo-1.0.dist-info/RECORD")
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps",
                    "--no-compile", "--target", str(site), str(dst)], check=True)
    assert not (site / "demo" / "jars").exists()
    assert os.access(site / "demo" / "bin" / "tool", os.X_OK)
    out = subprocess.run([sys.executable, "-c", "import demo; print(demo.VALUE)"],
                         env={**os.environ, "PYTHONPATH": str(site)}, capture_output=True,
                         text=True, check=True)
    assert out.stdout.strip() == "42"
    assert build_carry.compare({"wheels": [{"file": dst.name, "sha256": build_carry.sha256(dst)}]},
                               dst.parent) == []
    assert build_carry.compare({"wheels": [{"file": dst.name, "sha256": "0"}]}, dst.parent) == \
        [f"{dst.name} differs from the manifest"]
