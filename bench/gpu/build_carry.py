"""Build the carry folder of a GPU run: `.whl/`, the wheels of bench/gpu/carry.txt for the GPU
machine's CPython 3.12 on x86-64 Linux (manylinux), from PyPI.

A command on the GPU machine carries at most 64 MiB, the working tree included (about 9 MB), and
Ray's wheel alone is 75 MiB. So each wheel is rewritten: what a GPU run never opens is dropped
(STRIP: Ray's Java jars and its dashboard's web page, MLflow's web UI), its RECORD lines with
it, and every member is compressed with LZMA instead of deflate (zip method 14: pip installs
such a wheel as any other; Ray's three native binaries shrink from 32 to about 22 MB). The
result and each wheel's size and hash go to bench/gpu/carry-manifest.json, which
tests/bench/test_carry.py holds to the limit without downloading anything.

    python bench/gpu/build_carry.py            # downloads, strips, writes .whl/ (minutes)
    python bench/gpu/build_carry.py --check    # only compares .whl/ with the manifest

`.whl/` is ignored by git (.gitignore); this script rebuilds it. The GPU run installs it with
`pip install --no-index --no-deps --target /tmp/site .whl/*.whl` (bench/gpu/run.py).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import lzma
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CARRY = HERE / "carry.txt"
MANIFEST = HERE / "carry-manifest.json"
WHEELS = REPO / ".whl"
LIMIT = 64 * 2**20  # what one command of the device tool carries, working tree included
PYTHON = "3.12"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64"]
# Never opened by a GPU run: Ray's Java workers, the web pages of Ray's dashboard (a launch runs
# Ray without it) and of MLflow's UI (the run writes to a SQLite file).
STRIP = {"ray": ("ray/jars/", "ray/dashboard/client/build/"), "mlflow": ("mlflow/server/js/",)}
LZMA_PRESET = 9


def requirements(path: Path = CARRY) -> list[tuple[str, str]]:
    """(name, version) of every pinned line; one version per name."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        if not version:
            raise ValueError(f"{path}: {line!r} must pin one version (name==version)")
        key = canonical(name)
        if key in found:
            raise ValueError(f"{path}: {name} is listed twice: one version each")
        found[key] = version.strip()
    return sorted(found.items())


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().strip()


def dist_of(wheel: str) -> tuple[str, str]:
    """(canonical name, version) from a wheel's file name."""
    name, version = Path(wheel).name.split("-")[:2]
    return canonical(name), version


def download(dest: Path) -> None:
    pins = [f"{name}=={version}" for name, version in requirements()]
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", PYTHON, "--implementation", "cp",
            *[arg for p in PLATFORMS for arg in ("--platform", p)], "-d", str(dest), *pins]
    subprocess.run(argv, check=True)


class _Lzma9:
    """zipfile's LZMA compressor at preset 9 (zipfile's own uses lzma's default, 6). The
    properties header it writes says how to decompress, so any reader decompresses it."""

    def __init__(self) -> None:
        self._comp = None

    def _init(self) -> bytes:
        props = lzma._encode_filter_properties({"id": lzma.FILTER_LZMA1,  # type: ignore[attr-defined]
                                                "preset": LZMA_PRESET})
        self._comp = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=[
            lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)])  # type: ignore[attr-defined]
        return struct.pack("<BBH", 9, 4, len(props)) + props

    def compress(self, data: bytes) -> bytes:
        if self._comp is None:
            return self._init() + self._comp.compress(data)  # type: ignore[union-attr]
        return self._comp.compress(data)

    def flush(self) -> bytes:
        if self._comp is None:
            return self._init() + self._comp.flush()  # type: ignore[union-attr]
        return self._comp.flush()


def repack(src: Path, dst: Path, strip: tuple[str, ...]) -> dict[str, Any]:
    """Copy a wheel without the members under `strip` (and their RECORD lines), every member
    LZMA-compressed; file modes are kept (Ray's binaries must stay executable)."""
    removed = 0
    original = zipfile.LZMACompressor  # type: ignore[attr-defined]
    zipfile.LZMACompressor = _Lzma9  # type: ignore[attr-defined,misc]
    try:
        with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_LZMA) as zout:
            for info in zin.infolist():
                if info.filename.startswith(strip):
                    removed += 1
                    continue
                data = zin.read(info)
                if info.filename.endswith(".dist-info/RECORD") and strip:
                    data = b"".join(line for line in data.splitlines(keepends=True)
                                    if not line.decode().startswith(strip))
                member = zipfile.ZipInfo(info.filename, info.date_time)
                member.external_attr, member.compress_type = info.external_attr, zipfile.ZIP_LZMA
                zout.writestr(member, data)
    finally:
        zipfile.LZMACompressor = original  # type: ignore[attr-defined,misc]
    return {"stripped": list(strip), "removed_files": removed}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(out: Path = WHEELS) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        download(Path(tmp))
        if out.exists():
            shutil.rmtree(out)
        out.mkdir(parents=True)
        wheels = []
        for src in sorted(Path(tmp).glob("*.whl")):
            name, version = dist_of(src.name)
            dst = out / src.name
            info = repack(src, dst, STRIP.get(name, ()))
            wheels.append({"file": dst.name, "dist": name, "version": version,
                           "downloaded_bytes": src.stat().st_size,
                           "bytes": dst.stat().st_size, "sha256": sha256(dst), **info})
            print(f"{dst.name}: {src.stat().st_size / 2**20:.1f} -> "
                  f"{dst.stat().st_size / 2**20:.1f} MiB", flush=True)
    manifest = {
        "built": datetime.date.today().isoformat(), "python": PYTHON, "platforms": PLATFORMS,
        "compression": f"zip LZMA preset {LZMA_PRESET}", "strip": STRIP,
        "total_bytes": sum(w["bytes"] for w in wheels),
        "downloaded_bytes": sum(w["downloaded_bytes"] for w in wheels),
        "wheels": wheels}
    check_pins(manifest)
    return manifest


def check_pins(manifest: dict[str, Any]) -> None:
    wanted = dict(requirements())
    got = {w["dist"]: w["version"] for w in manifest["wheels"]}
    if got != wanted:
        raise SystemExit(f"the wheels differ from {CARRY.name}: missing "
                         f"{sorted(set(wanted) - set(got))}, extra {sorted(set(got) - set(wanted))}"
                         f", versions {[(k, got[k], wanted[k]) for k in got.keys() & wanted.keys() if got[k] != wanted[k]]}")


def compare(manifest: dict[str, Any], folder: Path = WHEELS) -> list[str]:
    """How `folder` differs from the manifest (empty: the same wheels, byte for byte)."""
    have = {p.name: p for p in folder.glob("*.whl")}
    problems = [f"{w['file']} is missing" for w in manifest["wheels"] if w["file"] not in have]
    listed = {w["file"] for w in manifest["wheels"]}
    problems += [f"{name} is not in the manifest" for name in sorted(set(have) - listed)]
    problems += [f"{w['file']} differs from the manifest" for w in manifest["wheels"]
                 if w["file"] in have and sha256(have[w["file"]]) != w["sha256"]]
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="compare .whl/ with the manifest")
    args = parser.parse_args(argv)
    if args.check:
        problems = compare(json.loads(MANIFEST.read_text()))
        print("\n".join(problems) or f"{WHEELS} matches {MANIFEST.name}")
        return 1 if problems else 0
    manifest = build()
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    total = manifest["total_bytes"]
    print(f"{len(manifest['wheels'])} wheels, {total / 2**20:.1f} MiB (downloaded "
          f"{manifest['downloaded_bytes'] / 2**20:.1f} MiB) in {WHEELS}; manifest {MANIFEST}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
