"""PyTorch outside Blender: the pip command per machine, a real venv made offline from local wheels, the probe."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from art_ai_addon import deps, torch_env
from art_ai_addon.errors import ArtAIError, Cancelled

FAKE_TORCH = '''__version__ = "2.13.0"


class cuda:
    @staticmethod
    def is_available():
        return False


class backends:
    class mps:
        @staticmethod
        def is_available():
            return False
'''


def _wheel_project(base: Path, name: str, version: str, module: str, code: str) -> Path:
    pkg = base / name
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(code)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "{name}"\nversion = "{version}"\n\n[tool.setuptools]\npackages = ["{module}"]\n')
    return pkg


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    """Tiny stand-ins for torch 2.13.0, numpy 1.26 and OpenCV, built offline with pip and setuptools, so the real
    requirement strings resolve from a local folder (a studio's offline wheel folder works the same way)."""
    base = tmp_path_factory.mktemp("wheelsrc")
    projects = [
        _wheel_project(base, "torch", "2.13.0", "torch", FAKE_TORCH),
        _wheel_project(base, "numpy", "1.26.99", "numpy", '__version__ = "1.26.99"\n'),
        _wheel_project(base, "opencv-python-headless", "4.11.0.86", "cv2", '__version__ = "4.11.0"\n'),
    ]
    out = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "-w", str(out), *map(str, projects)], check=True,
                   capture_output=True, timeout=180)
    assert len(list(out.glob("*.whl"))) == 3
    return out


@pytest.fixture
def no_pip_config(monkeypatch):
    """Only the wheel folder the test names: this machine's pip config adds local indexes and find-links."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)


def test_pip_command_runs_the_environments_own_pip(tmp_path):
    cmd = torch_env.build_pip_command(["torch==2.13.0"], python="/env/bin/python",
                                      index_url="https://download.pytorch.org/whl/cpu",
                                      extra_index_url=torch_env.PYPI_INDEX)
    assert cmd[:4] == ["/env/bin/python", "-m", "pip", "install"]
    assert "--target" not in cmd and "--user" not in cmd  # into the venv, nowhere else
    assert cmd[cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--only-binary=:all:" in cmd and cmd[-1] == "torch==2.13.0" and "--no-index" not in cmd
    offline = torch_env.build_pip_command(["torch==2.13.0"], python="py", find_links=tmp_path / "wheels")
    assert offline[offline.index("--find-links") + 1] == str(tmp_path / "wheels")
    assert "--no-index" in offline and "--index-url" not in offline
    (_label, default), = torch_env.plan(torch_env.DEFAULT_REQUIREMENTS, python="py", accelerator=("cpu", None))
    assert {"torch==2.13.0", "numpy>=1.26,<2"} <= set(default) and any(r.startswith("opencv") for r in default)


@pytest.mark.parametrize("system, accelerator, expected", [
    ("linux", ("cuda", (12, 4)), "https://download.pytorch.org/whl/cu126"),
    ("windows", ("cuda", (12, 9)), "https://download.pytorch.org/whl/cu128"),
    ("linux", ("cuda", (13, 1)), "https://download.pytorch.org/whl/cu130"),
    ("linux", ("cuda", (11, 4)), "https://download.pytorch.org/whl/cpu"),  # driver too old for any CUDA build
    ("linux", ("rocm", None), "https://download.pytorch.org/whl/rocm6.4"),
    ("windows", ("cpu", None), "https://download.pytorch.org/whl/cpu"),
    ("darwin", ("mps", None), None),  # macOS wheels on PyPI carry MPS
])
def test_torch_build_for_the_machine(system, accelerator, expected):
    index, label = torch_env.torch_index(accelerator, system)
    assert index == expected and label
    (_label, cmd), = torch_env.plan(["torch==2.13.0"], python="py", accelerator=accelerator, system=system)
    if expected:
        assert cmd[cmd.index("--index-url") + 1] == expected and torch_env.PYPI_INDEX in cmd
    else:
        assert "--index-url" not in cmd
    assert cmd[-1] == "torch==2.13.0"


def test_detect_accelerator_on_this_machine_and_cached():
    kind, _version = deps.detect_accelerator()
    assert kind in ("cuda", "rocm", "mps", "cpu")
    assert deps.detect_accelerator("Darwin", "arm64") == ("mps", None)
    assert deps.detect_accelerator("Darwin", "x86_64") == ("cpu", None)
    first = deps.accelerator_cached(refresh=True)
    assert first[0] == kind and deps.accelerator_cached() is first  # one detection per session


def test_finds_a_base_python_with_venv():
    base = torch_env.find_base_python()
    assert base, "no Python 3.10-3.13 with venv on this machine"
    res = subprocess.run([base, "-c", "import sys, venv; print(sys.version_info[0], sys.version_info[1])"],
                         capture_output=True, text=True, timeout=60)
    assert (3, 10) <= tuple(map(int, res.stdout.split())) <= (3, 13)


def test_create_env_offline_from_local_wheels(tmp_path, wheel_dir, no_pip_config):
    folder = tmp_path / "user" / "torch_env"
    seen = []
    path_before, had_torch = list(sys.path), "torch" in sys.modules  # earlier tests may have imported it
    python = torch_env.create_torch_env(folder, base_python=sys.executable, accelerator=("cpu", None),
                                   wheels_dir=wheel_dir, progress=lambda f, m: seen.append((f, m)))
    assert sys.path == path_before and ("torch" in sys.modules) == had_torch  # nothing reaches this process
    assert Path(python) == torch_env.env_python(folder) and Path(python).is_file()
    assert (folder / "pyvenv.cfg").is_file()
    probe = deps.probe_python(python, timeout=60)
    assert probe["ok"] and probe["error"] is None, probe
    assert probe["torch"] == "2.13.0" and probe["numpy"] == "1.26.99" and probe["cv2"] == "4.11.0"
    assert probe["device"] == "cpu" and probe["cuda"] is False and probe["mps"] is False
    # the venv is isolated: its prefix is the folder, and this process's site-packages are not on its path
    res = subprocess.run([python, "-c", "import sys, torch; print(sys.prefix); print(torch.__file__)"],
                         capture_output=True, text=True, timeout=60)
    prefix, torch_file = res.stdout.split()
    assert Path(prefix).resolve() == folder.resolve() and Path(torch_file).resolve().is_relative_to(folder.resolve())
    log = (folder.parent / "torch_env.log").read_text()
    assert "--no-index" in log and str(wheel_dir) in log and "Successfully installed" in log
    assert seen[-1][0] == 1.0 and all(b >= a for (a, _), (b, _) in zip(seen, seen[1:], strict=False))
    # running it again updates the working environment in place
    assert torch_env.create_torch_env(folder, base_python=sys.executable, accelerator=("cpu", None),
                                 wheels_dir=wheel_dir) == python


def test_create_env_failure_and_cancel_leave_nothing(tmp_path, wheel_dir, no_pip_config):
    folder = tmp_path / "torch_env"
    with pytest.raises(ArtAIError) as exc:
        torch_env.create_torch_env(folder, base_python=sys.executable, wheels_dir=wheel_dir,
                              requirements=["artai-not-there==1.0"])
    assert "torch_env.log" in str(exc.value) and "exit" in str(exc.value)
    assert not folder.exists()
    stop = threading.Event()

    def progress(fraction, message):
        if "installing" in message:
            stop.set()

    with pytest.raises(Cancelled):
        torch_env.create_torch_env(folder, base_python=sys.executable, wheels_dir=wheel_dir, progress=progress,
                              cancel=stop)
    assert not folder.exists()
    with pytest.raises(ArtAIError, match="does not exist"):
        torch_env.create_torch_env(folder, base_python=sys.executable, wheels_dir=tmp_path / "nowhere")


def test_probe_reports_what_is_wrong(tmp_path):
    missing = deps.probe_python(tmp_path / "no" / "python", timeout=10)
    assert not missing["ok"] and "does not exist" in missing["error"]
    assert "not on PATH" in deps.probe_python("art-ai-no-such-python", timeout=10)["error"]
    # this process's own Python: has numpy; torch too in the dev venv, so blank torch out with a path hook
    blocker = tmp_path / "block"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('torch blocked for the test')\n")
    env_python = tmp_path / "py.sh"
    env_python.write_text(f'#!/bin/sh\nPYTHONPATH={blocker} exec {sys.executable} "$@"\n')
    env_python.chmod(0o755)
    answer = deps.probe_python(env_python, timeout=60)
    assert not answer["ok"] and "no PyTorch" in answer["error"] and "blocked" in answer["error"]
    assert answer["numpy"]


def test_build_flavour_and_status_import_nothing():
    assert deps.build_flavour() in ("full", "platform") and deps.can_create_env() == (deps.build_flavour() == "full")
    info = deps.status()
    assert info["numpy"]["present"] and info["numpy"]["version"]
    assert all(Path(v["location"]).exists() for v in info.values() if v["present"])
    code = "import sys; import art_ai_addon.deps as d; d.status(); d.can_create_env(); print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1])
    assert res.stdout.strip() == "False", res.stderr
