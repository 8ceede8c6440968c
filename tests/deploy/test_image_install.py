"""The image's build steps, as far as a machine without Docker can run them.

Runs the Dockerfile's install lines (between `# BEGIN install` and `# END install`) in a
fresh virtual environment, against a copy of exactly what the Dockerfile COPYs into /src,
then imports the three services from that environment, outside the source tree. The
Dockerfile's paths are replaced by temporary ones (/opt/venv, /src) and `python` by this
interpreter; pip's cache is left on (the Dockerfile turns it off) to keep this near 30 s.
Needs PyPI, as `make test` does anyway.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def build_stage_steps() -> tuple[list[tuple[str, str]], list[str]]:
    """The (source, destination) of each COPY before the install, and the install commands."""
    text = (ROOT / "Dockerfile").read_text()
    stage = text.split("\nFROM ")[1]
    before, _, rest = stage.partition("# BEGIN install\n")
    block, _, _ = rest.partition("# END install\n")
    copies = [(m.group(1), m.group(2)) for m in re.finditer(r"^COPY (\S+) (\S+)$", before, re.M)]
    runs = [line.removeprefix("RUN ") for line in block.splitlines() if line.startswith("RUN ")]
    assert copies and runs, "the Dockerfile lost its COPY lines or its install block"
    return copies, runs


@pytest.mark.timeout(240)
def test_dockerfile_install_lines_give_a_working_environment(tmp_path: Path) -> None:
    copies, runs = build_stage_steps()
    src, venv = tmp_path / "src", tmp_path / "venv"
    src.mkdir()
    for source, dest in copies:
        target = src / (source if dest.endswith("/") or dest == "./" else dest)
        if (ROOT / source).is_dir():
            shutil.copytree(
                ROOT / source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        else:
            shutil.copy2(ROOT / source, target)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    for command in runs:
        argv = shlex.split(command.replace("/opt/venv", str(venv)).replace("/src", str(src)))
        if argv[0] == "python":
            argv[0] = sys.executable
        result = subprocess.run(argv, cwd=src, env=env, capture_output=True, text=True, timeout=200)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    probe = (
        "import services.chat.app, services.registry.app, services.dispatcher.app, pathlib\n"
        "import shared.callback_receiver\n"  # the dev overlay's callback-demo runs it
        "import services.chat as chat\n"
        "assert 'site-packages' in chat.__file__, chat.__file__\n"
        "assert (pathlib.Path(chat.__file__).parent / 'static' / 'index.html').exists()\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        cwd=tmp_path,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == "ok", result.stderr
