import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
HOTPOT_SAMPLE = SHARED_DATA / "hotpotqa_dev_sample89.json"


def shared(name: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real data sets sit in ../shared/data beside the repository")
    return path


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small generated world on disk (seed 7): 200 train, 60 dev, 60 test questions."""
    from fireflan.worlds.wiki import WorldConfig, write_world

    out = tmp_path_factory.mktemp("world")
    write_world(WorldConfig(seed=7, train=200, dev=60, test=60), out)
    return out


def run_cli(*args, check=True, module="fireflan"):
    """Run `python -m MODULE ARGS` (default: fireflan) in a subprocess; returns the CompletedProcess."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"fireflan {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc
