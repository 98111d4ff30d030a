"""What ``make dist`` checks after ``build``, ``twine check`` and ``check-wheel-contents``:

- the wheel holds ``LICENSE`` (in its ``.dist-info/licenses/``) and ``cdm_status/py.typed``,
  the sdist holds ``LICENSE``, ``CHANGELOG.md`` and ``README.md``;
- the wheel, installed with the ``server`` extra (for ``cdm-status simulate``) into a fresh
  virtualenv made from this interpreter, runs the README's library example against the
  simulator it serves, with ``rich`` (the ``cli`` extra) not installed.

``python -m tests.support.check_dist DIST_DIR`` from the repository's root.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
import venv
import zipfile
from pathlib import Path

from tests.support.readme import run_library_example, simulated_env


def only(paths: list[Path], what: str) -> Path:
    if len(paths) != 1:
        raise SystemExit(f"check_dist: expected one {what}, found {[p.name for p in paths]}")
    return paths[0]


def check_wheel(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for wanted in ("cdm_status/py.typed", "cdm_status/__init__.py"):
        assert wanted in names, f"{wheel.name} lacks {wanted}"
    licenses = [name for name in names if name.endswith(".dist-info/licenses/LICENSE")]
    assert licenses, f"{wheel.name} lacks LICENSE in its .dist-info/licenses/"
    metadata = next(name for name in names if name.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(wheel).read(metadata).decode()
    assert "License-Expression: Apache-2.0" in text, "no License-Expression in METADATA"
    assert "License-File: LICENSE" in text, "no License-File in METADATA"


def check_sdist(sdist: Path) -> None:
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    for wanted in ("LICENSE", "CHANGELOG.md", "README.md", "pyproject.toml"):
        assert wanted in names, f"{sdist.name} lacks {wanted}"


def run_example_in_fresh_venv(wheel: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="cdm-status-dist-") as tmp:
        home = Path(tmp) / "venv"
        venv.create(home, with_pip=True)
        python = str(home / "bin" / "python")
        subprocess.run(
            [python, "-m", "pip", "install", "--quiet", f"{wheel.resolve()}[server]"],
            check=True,
        )
        rich = subprocess.run(
            [python, "-c", "import importlib.util as u; print(u.find_spec('rich') is None)"],
            capture_output=True,
            text=True,
            check=True,
        )
        assert rich.stdout.strip() == "True", "rich was installed without the cli extra"
        with simulated_env(str(home / "bin" / "cdm-status")) as env:
            run_library_example(python, env, Path(tmp) / "example.py")


def main(dist: Path) -> None:
    wheel = only(sorted(dist.glob("*.whl")), "wheel")
    sdist = only(sorted(dist.glob("*.tar.gz")), "sdist")
    check_wheel(wheel)
    check_sdist(sdist)
    print(f"check_dist: {wheel.name} and {sdist.name} hold LICENSE (and py.typed)")
    run_example_in_fresh_venv(wheel)
    print(f"check_dist: the README example ran with {wheel.name} in a fresh virtualenv")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "dist"))
