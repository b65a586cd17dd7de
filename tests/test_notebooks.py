"""The notebooks in notebooks/, executed top to bottom in a fresh kernel as a student's Jupyter would, at
the tiny scale (the tiny base, a few questions; the prompted baseline is the embedded Gemma). The lab's
sizes run in the slow tier (test_lab.py)."""

import os
import shutil

import pytest
from helpers import ROOT
from helpers.notebooks import NOTEBOOKS, outputs, run_notebook

pytest.importorskip("nbclient", reason="the dev extra is not installed (nbclient runs the notebooks)")
pytest.importorskip("trl", reason="the train extra is not installed")
pytest.importorskip("llama_cpp", reason="the infer extra is not installed")

TINY = {"base": "tiny", "prompted": "embedded", "train_questions": 30, "max_steps": 3, "batch_size": 2,
        "grad_accum": 1, "eval_questions": 3, "probes": 2}


def test_every_notebook_says_up_front_how_long_it_takes():
    import nbformat

    books = sorted(NOTEBOOKS.glob("*.ipynb"))
    assert [b.name for b in books] == ["01-fireact.ipynb", "02-agentflan.ipynb", "03-inference-methods.ipynb"]
    for book in books:
        nb = nbformat.read(book, as_version=4)
        assert nb.cells[0].cell_type == "markdown" and "Time on 2 cores" in nb.cells[0].source, book.name
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), book.name
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), f"{book.name} is saved run"


@pytest.fixture(scope="module")
def checkout(tmp_path_factory):
    """A checkout's notebooks/ and recipes/ with runs/lab as `make lab` leaves it (the recipe run from the root,
    so the stages record relative paths), at the tiny scale."""
    from fireflan.recipes import hotpotqa
    from fireflan.recipes.common import read_options

    root = tmp_path_factory.mktemp("checkout")
    shutil.copytree(NOTEBOOKS, root / "notebooks")
    shutil.copytree(ROOT / "recipes", root / "recipes")
    here = os.getcwd()
    os.chdir(root)
    try:
        hotpotqa.main(read_options(hotpotqa.HotpotQARecipe, "recipes/lab.toml", **TINY))
    finally:
        os.chdir(here)
    return root


def test_notebook_1_fireact_reads_make_labs_folder_and_shows_its_figures(checkout):
    nb = run_notebook("01-fireact.ipynb", {"OPTIONS": TINY}, folder=checkout / "notebooks")
    streams = "".join(outputs(nb, "stream"))
    for name in ("world", "teach", "corpus", "train", "export", "eval-prompted", "eval-finetuned"):
        assert f"== {name}: finished before" in streams, name  # make lab's stages read back, none redone
    html = outputs(nb, "text/html")
    assert any("ff-trained" in h for h in html)              # a record, token by token
    assert any("ff-side" in h and "gold:" in h for h in html)  # two questions side by side
    assert len(outputs(nb, "image/png")) == 1                # the loss curve
    table = "".join(outputs(nb, "text/markdown"))
    assert "EM" in table and "prompted" in table and "fine-tuned" in table


def test_notebook_2_agentflan_runs_on_the_lab_folder(checkout):
    nb = run_notebook("02-agentflan.ipynb", {"OPTIONS": TINY}, folder=checkout / "notebooks")
    streams = "".join(outputs(nb, "stream"))
    assert "== train: finished before" in streams and "== train-agentflan\n" in streams  # only the new model trained
    html = outputs(nb, "text/html")
    assert sum("ff-trained" in h for h in html) >= 3        # both formats, and negatives
    table = "".join(outputs(nb, "text/markdown"))
    assert "FireAct format" in table and "Agent-FLAN" in table and "tool misuse" in table
    assert (checkout / "runs" / "lab" / "corpus-agentflan-nonegatives" / "train.jsonl").exists()


def test_notebook_3_inference_methods_runs_on_the_lab_folder(checkout):
    nb = run_notebook("03-inference-methods.ipynb", {"OPTIONS": TINY, "QUESTIONS": 2}, folder=checkout / "notebooks")
    assert "== train: finished before" in "".join(outputs(nb, "stream"))
    table = "".join(outputs(nb, "text/markdown"))
    for method in ("react", "branches", "decompose", "backtrack"):
        assert method in table
    assert "model calls per question" in table
    assert any("ff-side" in h for h in outputs(nb, "text/html"))
