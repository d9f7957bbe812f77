"""Dependency installer: pip command per machine, and a real install from a local wheel folder (no network)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from art_ai_addon import deps
from art_ai_addon.errors import ArtAIError


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory):
    """A folder holding one tiny wheel, built offline from a minimal package with pip and setuptools."""
    base = tmp_path_factory.mktemp("wheelsrc")
    pkg = base / "artai_dummy_dep"
    (pkg / "artai_dummy_dep").mkdir(parents=True)
    (pkg / "artai_dummy_dep" / "__init__.py").write_text("VALUE = 'dummy dependency 0.3'\n")
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
        '[project]\nname = "artai-dummy-dep"\nversion = "0.3"\n\n'
        '[tool.setuptools]\npackages = ["artai_dummy_dep"]\n')
    out = base / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "-w", str(out), str(pkg)], check=True, capture_output=True,
                   timeout=120)
    assert list(out.glob("artai_dummy_dep-0.3-*.whl"))
    return out


def test_pip_command_targets_the_folder_with_blenders_python(tmp_path):
    cmd = deps.build_pip_command(["torch==2.13.0"], tmp_path / "site", python="/blender/python3.11",
                                 index_url="https://download.pytorch.org/whl/cpu", extra_index_url=deps.PYPI_INDEX)
    assert cmd[:4] == ["/blender/python3.11", "-m", "pip", "install"]
    assert cmd[cmd.index("--target") + 1] == str(tmp_path / "site")
    assert cmd[cmd.index("--index-url") + 1] == "https://download.pytorch.org/whl/cpu"
    assert "--only-binary=:all:" in cmd and cmd[-1] == "torch==2.13.0" and "--no-index" not in cmd
    offline = deps.build_pip_command(["torch==2.13.0"], tmp_path / "site", find_links=tmp_path / "wheels")
    assert offline[offline.index("--find-links") + 1] == str(tmp_path / "wheels")
    assert "--no-index" in offline and "--index-url" not in offline
    # OpenCV goes in without its numpy requirement, so Blender's numpy stays the one imported
    (_label, opencv_cmd), = deps.plan(["opencv"], tmp_path / "site", python="py", accelerator=("cpu", None))
    assert "--no-deps" in opencv_cmd and opencv_cmd[-1] == "opencv-python-headless"


@pytest.mark.parametrize("system, accelerator, expected", [
    ("linux", ("cuda", (12, 4)), "https://download.pytorch.org/whl/cu126"),
    ("windows", ("cuda", (12, 9)), "https://download.pytorch.org/whl/cu128"),
    ("linux", ("cuda", (13, 1)), "https://download.pytorch.org/whl/cu130"),
    ("linux", ("cuda", (11, 4)), "https://download.pytorch.org/whl/cpu"),  # driver too old for any CUDA build
    ("linux", ("rocm", None), "https://download.pytorch.org/whl/rocm6.4"),
    ("windows", ("cpu", None), "https://download.pytorch.org/whl/cpu"),
    ("darwin", ("mps", None), None),  # macOS wheels on PyPI carry MPS
])
def test_torch_build_for_the_machine(system, accelerator, expected, tmp_path):
    index, label = deps.torch_index(accelerator, system)
    assert index == expected and label
    (_label, cmd), = deps.plan(["torch"], tmp_path, python="py", accelerator=accelerator, system=system)
    if expected:
        assert cmd[cmd.index("--index-url") + 1] == expected and deps.PYPI_INDEX in cmd
    else:
        assert "--index-url" not in cmd
    assert cmd[-1] == "torch==2.13.0"


def test_detect_accelerator_on_this_machine():
    kind, version = deps.detect_accelerator()
    assert kind in ("cuda", "rocm", "mps", "cpu")
    assert deps.detect_accelerator("Darwin", "arm64") == ("mps", None)


def test_install_from_a_local_wheel_folder(tmp_path, wheel_dir):
    target = tmp_path / "ext_user" / "site-packages"
    log = tmp_path / "ext_user" / "install.log"
    seen = []
    try:
        out = deps.install(["artai-dummy-dep==0.3"], target, wheels_dir=wheel_dir, log_path=log,
                           progress=lambda f, m: seen.append((f, m)))
        assert out == target and str(target) in sys.path
        assert (target / "artai_dummy_dep" / "__init__.py").is_file()
        import artai_dummy_dep

        assert artai_dummy_dep.VALUE == "dummy dependency 0.3"
    finally:
        deps.remove_from_sys_path(target)
        sys.modules.pop("artai_dummy_dep", None)
    assert str(target) not in sys.path
    text = log.read_text()
    assert "--no-index" in text and "--find-links" in text and str(wheel_dir) in text
    assert "Successfully installed artai-dummy-dep-0.3" in text and "=== exit 0" in text
    assert seen[-1][0] == 1.0 and any("artai" in m for _f, m in seen)
    # a fresh interpreter with the folder on its path imports it too (what Blender does at start-up)
    code = f"import sys; sys.path.append({str(target)!r}); import artai_dummy_dep as m; print(m.VALUE)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "dummy dependency 0.3"


def test_install_failure_names_the_log(tmp_path, wheel_dir):
    log = tmp_path / "install.log"
    with pytest.raises(ArtAIError) as exc:
        deps.install(["artai-not-there==1.0"], tmp_path / "site", wheels_dir=wheel_dir, log_path=log)
    assert str(log) in str(exc.value) and "pip exit" in str(exc.value)
    assert "ERROR" in log.read_text()
    with pytest.raises(ArtAIError, match="does not exist"):
        deps.install(["x"], tmp_path / "site", wheels_dir=tmp_path / "nowhere")


def test_status_reports_versions_without_importing_torch():
    info = deps.status()
    assert info["numpy"]["present"] and info["numpy"]["version"]
    assert set(deps.PACKAGES) <= set(info)
    assert all(Path(v["location"]).exists() for v in info.values() if v["present"])
