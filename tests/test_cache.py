"""The cache: an entry is built once, by one process at a time, published whole or not at all, and
checked before it is trusted (a broken one is rebuilt)."""

import json
import subprocess
import sys
import textwrap

import pytest
from helpers import ROOT

from fireflan.cache import build_once, cache_dir, seal, whole_folder

SLOW_BUILD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from fireflan.cache import build_once, seal, whole_folder

    target, log = Path(sys.argv[1]), Path(sys.argv[2])

    def build(tmp):
        with log.open("a") as f:
            f.write("built\\n")
        tmp.mkdir()
        (tmp / "config.json").write_text('{"model_type": "gemma3_text"}')
        time.sleep(1.5)  # long enough for the other process to arrive meanwhile
        (tmp / "model.safetensors").write_bytes(b"w" * 1000)
        seal(tmp, "fireflan-base.json", {"base": "fake"})

    build_once(target, build, whole_folder("fireflan-base.json", ("config.json", "model.safetensors")), "fake base")
    print((target / "model.safetensors").stat().st_size)
""")


def _together(*argvs, timeout=120):
    procs = [subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for argv in argvs]
    return [(p.wait(timeout=timeout), p.stdout.read(), p.stderr.read()) for p in procs]


def test_two_processes_building_one_entry_build_it_once_and_both_use_it(tmp_path):
    script = tmp_path / "build.py"
    script.write_text(SLOW_BUILD)
    target, log = tmp_path / "cache" / "base", tmp_path / "builds.log"
    results = _together(*[[sys.executable, str(script), str(target), str(log)]] * 3)
    assert [(rc, out.split()[-1]) for rc, out, _ in results] == [(0, "1000")] * 3, results
    assert log.read_text() == "built\n"  # the others waited, then found it whole
    check = whole_folder("fireflan-base.json", ("config.json", "model.safetensors"))
    assert check(target) is None and sorted(p.name for p in target.parent.iterdir()) == ["base", "base.lock"]


def test_two_processes_building_the_tiny_model_at_once_leave_one_loadable_model(tmp_path):
    """The defect as it was found (two processes preparing one base folder at once, cache left without
    weights): each of these would rmtree the other's half-built folder and rename over it."""
    pytest.importorskip("transformers")
    folder = tmp_path / "tiny"
    code = "import sys; from fireflan.train.bases import build_tiny; print(build_tiny(sys.argv[1]))"
    results = _together(*[[sys.executable, "-c", code, str(folder)]] * 3, timeout=600)
    assert [rc for rc, _, _ in results] == [0, 0, 0], [err[-2000:] for _, _, err in results]
    from transformers import AutoConfig, AutoTokenizer

    assert AutoConfig.from_pretrained(folder).model_type == "gemma3_text"
    assert len(AutoTokenizer.from_pretrained(folder)) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny", "tiny.lock"]


def test_a_broken_entry_is_rebuilt_with_a_message_and_a_failed_build_publishes_nothing(tmp_path, capsys):
    check = whole_folder("m.json", ("config.json", "model.safetensors"))
    target = tmp_path / "base"
    target.mkdir()  # what the race left: a marker and a tokenizer, no weights and no config
    (target / "m.json").write_text("{}")
    (target / "tokenizer.json").write_text("{}")
    assert check(target) == "config.json is missing"

    def build(tmp):
        tmp.mkdir()
        (tmp / "config.json").write_text(json.dumps({"model_type": "x"}))
        (tmp / "model.safetensors").write_bytes(b"12345")
        seal(tmp, "m.json", {})

    assert build_once(target, build, check, "test base") == target and check(target) is None
    said = capsys.readouterr().out
    assert "the cached test base at" in said and "(config.json is missing); building it again" in said
    (target / "model.safetensors").write_bytes(b"12")  # truncated later
    assert check(target) == "model.safetensors is missing or not 5 bytes"

    def dies(tmp):
        tmp.mkdir()
        (tmp / "config.json").write_text("{}")
        raise KeyboardInterrupt

    other = tmp_path / "other"
    with pytest.raises(KeyboardInterrupt):
        build_once(other, dies, check, "test base")
    assert not other.exists() and not list(tmp_path.glob(".other.*"))

    def incomplete(tmp):
        tmp.mkdir()
        seal(tmp, "m.json", {})

    with pytest.raises(RuntimeError, match="config.json is missing"):
        build_once(other, incomplete, check, "test base")
    assert not other.exists()


def test_the_embedded_base_folder_is_checked_before_it_is_used(tmp_path, monkeypatch):
    """The cache the defect left (marker and tokenizer, no weights, no config) is rebuilt, not loaded."""
    from fireflan.train import bases

    folder = tmp_path / "gemma3-270m"
    folder.mkdir()
    (folder / bases.MARKER).write_text(json.dumps({"base": "embedded"}))
    (folder / "tokenizer.json").write_text("{}")
    built = []

    def fake_build(tmp, cache):
        built.append(cache)
        tmp.mkdir()
        for name in ("config.json", "model.safetensors", "tokenizer.model", "tokenizer.json", "tokenizer_config.json"):
            (tmp / name).write_text(json.dumps({"model_type": "gemma3_text"}))
        (tmp / "chat_template.jinja").write_text(bases.CHAT_TEMPLATE)
        seal(tmp, bases.MARKER, {"base": "embedded"})

    monkeypatch.setattr(bases, "_build_embedded", fake_build)
    assert bases.prepare_embedded(folder) == folder and built == [tmp_path]
    assert bases.prepare_embedded(folder) == folder and built == [tmp_path]  # whole now: used as it is


def test_a_base_built_with_another_chat_template_is_rebuilt_with_this_one(tmp_path, capsys):
    """What CI met: a cache in $HOME outlived the commit that changed the template, and the slow tier
    trained on the old one."""
    pytest.importorskip("transformers")
    from fireflan.train.bases import build_tiny
    from fireflan.train.chat_template import CHAT_TEMPLATE

    folder = build_tiny(tmp_path / "tiny")
    template = folder / "chat_template.jinja"
    assert template.read_text() == CHAT_TEMPLATE
    template.write_text("X" + CHAT_TEMPLATE[1:])  # same size: the sealed sizes still match
    capsys.readouterr()
    assert build_tiny(folder) == folder and template.read_text() == CHAT_TEMPLATE
    said = capsys.readouterr().out
    assert "not this fireflan's, it was built by another version); building it again" in said, said[:400]


def test_each_chat_template_has_its_own_base_folder_in_the_cache(monkeypatch):
    """Two checkouts with different templates on one machine: each builds its own folder, neither removes
    the folder the other may be training from."""
    from fireflan.train import bases

    mine = bases.cached("gemma3-270m")
    assert mine.parent == cache_dir() and mine.name.startswith("gemma3-270m-") and len(mine.name) == 20
    monkeypatch.setattr(bases, "CHAT_TEMPLATE", bases.CHAT_TEMPLATE + " ")
    assert bases.cached("gemma3-270m") != mine
