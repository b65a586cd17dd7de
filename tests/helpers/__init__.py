"""What the tests share that is not a fixture: the repository's paths, the real data sets, running the CLI.
The fake OpenAI server (`fake_openai`), the headless browser (`devtools`) and the Go-template checker
(`gotemplate`) are modules beside this one; the fixtures are in ../conftest.py."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = ROOT.parent / "shared" / "data"
HOTPOT_SAMPLE = SHARED_DATA / "hotpotqa_dev_sample89.json"


def shared(name: str) -> Path:
    """A file of ../shared/data, or skip the test saying why."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: the real data sets sit in ../shared/data beside the repository")
    return path


def run_cli(*args, check=True, module="fireflan"):
    """Run `python -m MODULE ARGS` (default: fireflan) in a subprocess; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", module, *map(str, args)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"fireflan {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def hotpot_file(world, path, n=3):
    """An official-schema HotpotQA file (a JSON list) of n world test questions: the real loader reads it."""
    records = [json.loads(x) for x in (world / "test.jsonl").read_text().splitlines()[:n]]
    path.write_text(json.dumps([{k: r[k] for k in ("_id", "question", "answer", "type", "level", "supporting_facts",
                                                   "context")} for r in records]))
    return path
