"""The report page: written from real evaluation folders, then looked at in a real browser.

The browser test drives headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe:
no websocket, no extra package): it opens the page from disk, applies a filter, opens a question and
checks what is shown, saving a screenshot of each view (also copied to /tmp/fireflan-screenshots).
Chromium is found on the PATH (or FIREFLAN_CHROMIUM), installed with apt-get as root where it can be,
and the test is skipped, saying why, where it cannot.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from helpers import run_cli
from helpers.devtools import SCREENSHOTS

from fireflan.agent.loop import Step, Trajectory
from fireflan.report.page import CHUNK, outcome, page_data, write_html
from fireflan.report.runs import fact_sentences, run_names

# --------------------------------------------------------------------------- a run folder, as the recipe leaves it

HOSTILE = '</script><script>window.PWNED = 1</script><img src=x onerror="window.PWNED = 2">'  # shown as text


class Mixed:
    """A test model: the scripted expert on some questions; on others it repeats one search until its steps
    run out, or answers at once, wrongly. `plan(i)` says which for the i-th question."""

    def __init__(self, examples, plan, name):
        from fireflan.models.scripted import ScriptedExpert

        self.expert, self.name, self.last_usage = ScriptedExpert(examples), name, None
        self.plan = {ex.question.strip(): (plan(i), ex) for i, ex in enumerate(examples)}

    def generate(self, messages, **kw):
        question = [m["content"] for m in messages if m["role"] == "user" and
                    not m["content"].startswith("Observation:")][-1].strip()
        how, ex = self.plan[question]
        if how == "expert":
            return self.expert.generate(messages, **kw)
        if how == "loop":
            hops = self.expert.route(ex)
            title = hops[0].query if hops else ex.question  # no walk reaches the pages: search the question
            return f"Thought: <u>not underlined</u> I should search {title}.\nAction: search[{title}]"
        return f"Thought: I think I know this one. {HOSTILE}\nAction: finish[Nobody {HOSTILE}]"


def prompted_plan(i):
    return "expert" if i % 3 == 0 else "loop" if i % 3 == 1 else "wrong"


def finetuned_plan(i):
    return "wrong" if i % 5 == 4 else "expert"


@pytest.fixture(scope="module")
def run(small_world, tmp_path_factory):
    """PARENT/{eval-prompted, eval-finetuned, model, corpus}: two evaluations of the same 24 world questions,
    the corpus built from the scripted teacher's trajectories, and a training curve."""
    from fireflan.corpus.build import CorpusConfig, build_corpus
    from fireflan.evaluate import EvalConfig, evaluate
    from fireflan.tasks import get_task
    from fireflan.teach import TeachConfig, teach
    from fireflan.train.trainer import plot_loss

    parent = tmp_path_factory.mktemp("run")
    small_world = hostile_pages(small_world, parent / "world")
    examples = get_task("world").load(small_world, split="test")[:24]
    for name, plan, prompt in (("prompted", prompted_plan, "fewshot"), ("finetuned", finetuned_plan, "none")):
        evaluate(EvalConfig(out=str(parent / f"eval-{name}"), data=str(small_world), limit=24, max_calls=6,
                            prompt=prompt, shots=1), model=Mixed(examples, plan, name=f"fake-{name}"))
    teach(TeachConfig(out=str(parent / "teach"), data=str(small_world), split="train", limit=30))
    build_corpus(CorpusConfig(inputs=str(parent / "teach" / "trajectories.jsonl"), out=str(parent / "corpus")))
    model = parent / "model"
    model.mkdir()
    (model / "loss.csv").write_text("step,loss,learning_rate,supervised_tok_s,seconds\n" + "".join(
        f"{s},{3.2 * 0.93 ** s + 0.4:.4f},0.0005,900.0,{s * 1.5:.1f}\n" for s in range(1, 41)))
    (model / "train.json").write_text(json.dumps({"schema": "fireflan.train/1", "base_name": "embedded",
                                                  "backend": "trl", "lora": True, "steps": 40, "train_loss": 0.61,
                                                  "val_loss": 0.66, "records": 120, "seconds": 61.0,
                                                  "config": {"rank": 16, "alpha": 32, "lr": 5e-4, "batch_size": 4,
                                                             "seed": 0}}))
    plot_loss(model)
    return parent


def hostile_pages(world: Path, out: Path) -> Path:
    """A copy of the world whose every page (and question paragraph) ends in HOSTILE: a corpus taken from
    the web may hold markup, and the observations that quote it must stay text on the page."""
    out.mkdir()
    for path in world.glob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines()]
        for r in records:
            if "text" in r:
                r["text"] += f" {HOSTILE}"
                r["sentences"].append(HOSTILE)
            for paragraph in r.get("context", []):
                paragraph[1].append(HOSTILE)
        (out / path.name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return out


def read_script(path: Path, prefix: str):
    text = path.read_text(encoding="utf-8")
    assert text.startswith(prefix)
    return json.loads(text[len(prefix):].rstrip().removesuffix(";").removesuffix(")"))


# --------------------------------------------------------------------------- the data (no browser)

def test_outcomes_names_and_facts():
    assert outcome(["p", "f"], [False, True]) == ("only-f-right", "only f right")
    assert outcome(["p", "f"], [True, True]) == ("both-right", "both right")
    assert outcome(["a", "b", "c"], [False, False, False]) == ("all-wrong", "all wrong")
    assert outcome(["a", "b", "c"], [True, False, True]) == ("only-a-c-right", "only a and c right")
    assert outcome(["p", "f"], [True, None]) == ("missing", "not in every run")
    assert outcome(["x"], [True]) == ("right", "right")
    assert run_names(["a/eval", "b/eval", "b/other"]) == ["a/eval", "b/eval", "other"]
    assert fact_sentences([["P", 1], ["Q", 9]], [["P", ["P is big.", " It is old. "]], ["Q", ["Q."]]]) == ["It is old."]


def test_page_of_a_recipe_run(run, tmp_path):
    index = write_html([run / "eval-prompted", run / "eval-finetuned"], tmp_path / "html")
    assert index == tmp_path / "html" / "index.html"
    names = {p.name for p in (tmp_path / "html").iterdir()}
    assert {"index.html", "page.js", "page.css", "data.js", "steps", "loss.png", "plot-em.png"} <= names
    data = read_script(tmp_path / "html" / "data.js", "window.FIREFLAN_DATA = ")
    assert data["runs"] == ["eval-prompted", "eval-finetuned"] and len(data["questions"]) == 24
    outcomes = {o["id"]: o["count"] for o in data["outcomes"]}
    expected = {"both-right": 0, "only-eval-prompted-right": 0, "only-eval-finetuned-right": 0, "both-wrong": 0}
    for i in range(24):
        p, f = prompted_plan(i) == "expert", finetuned_plan(i) == "expert"
        key = "both-right" if p and f else "both-wrong" if not (p or f) else \
            "only-eval-prompted-right" if p else "only-eval-finetuned-right"
        expected[key] += 1
    assert outcomes == expected
    why = {label: n for label, n in zip(data["why"], data["why_counts"][0], strict=True)}  # the prompted run's
    assert why["right"] == 8 and sum(why.values()) == 24
    assert why["loop: unfinished, the last outputs unreadable or repeated"] == 8  # it searched one page 6 times
    assert set(data["types"]) <= {"bridge", "comparison", "single", "notool"} and "bridge" in data["types"]
    assert data["table"]["rows"][1][0] == "eval-finetuned" and data["settings"]["head"][1:] == data["runs"]
    assert data["training"]["loss"]["steps"] == 40 and data["training"]["plot"] == "loss.png"
    assert data["corpus"]["mixes"]["method"]["realised"] and data["corpus"]["mixes"]["negatives"]["asked"]
    assert data["written"]["cpus"] == os.cpu_count() and not data["notes"]
    chunk = read_script(tmp_path / "html" / "steps" / "0000.js", "FIREFLAN_chunk(0, ")
    # a question the prompted model loops on (every third, from the second) that has supporting facts
    facts, trajs = next(q for i, q in enumerate(chunk["questions"]) if prompted_plan(i) == "loop" and q[0])
    assert all(isinstance(f, int) for f in facts)
    looped = trajs[0]["steps"]
    assert len(looped) == 6 and len({s[3] for s in looped}) == 1  # six searches, one observation kept once
    assert chunk["strings"][facts[0]] in chunk["strings"][looped[0][3]]  # the fact is on the page it found


def test_page_without_the_data_or_training_folders(run, tmp_path):
    """Evaluations whose data moved: no types, no facts, a note; no model or corpus folder beside them."""
    for name in ("eval-prompted", "eval-finetuned"):
        shutil.copytree(run / name, tmp_path / "runs" / name)
        config = json.loads((tmp_path / "runs" / name / "config.json").read_text())
        (tmp_path / "runs" / name / "config.json").write_text(json.dumps({**config, "data": str(tmp_path / "gone")}))
    write_html([tmp_path / "runs" / "eval-prompted", tmp_path / "runs" / "eval-finetuned"], tmp_path / "html",
               plots=False)
    data = read_script(tmp_path / "html" / "data.js", "window.FIREFLAN_DATA = ")
    assert data["types"] == [""] and "unavailable" in data["notes"][0]
    assert data["training"] is None and data["corpus"] is None and len(data["questions"]) == 24
    from fireflan.io import DataError

    with pytest.raises(DataError, match="loss.csv or train.json"):
        write_html([tmp_path / "runs" / "eval-prompted"], tmp_path / "x", model_dir=tmp_path)


def test_cli_writes_the_page_and_the_markdown(run, tmp_path):
    proc = run_cli("report", run / "eval-prompted", run / "eval-finetuned", "--html", tmp_path / "html")
    assert f"page: {tmp_path / 'html' / 'index.html'}" in proc.stdout and "report:" not in proc.stdout
    proc = run_cli("report", "--runs", f"{run / 'eval-prompted'},{run / 'eval-finetuned'}", "--html",
                   tmp_path / "h2", "--out", tmp_path / "r.md", "--model", run / "model", "--corpus", run / "corpus")
    assert f"report: {tmp_path / 'r.md'}" in proc.stdout and (tmp_path / "r.md").exists()
    assert (tmp_path / "h2" / "index.html").exists()


def synthetic_runs(root: Path, n: int) -> list[Path]:
    """Two evaluations of N questions in the trajectory schema: one repeats its search, one finds the answer."""
    obs = "Velmora is a city in Daidram. It was founded in 1650. Its mayor is Brehe Povav. " * 3
    folders = []
    for name, good in (("eval-prompted", False), ("eval-finetuned", True)):
        folder = root / name
        folder.mkdir(parents=True)
        lines = []
        for i in range(n):
            steps = [Step(f"I need the page on Velmora {i}.", "search", f"Velmora {i}", obs + str(i), "", seconds=0.1)
                     for _ in range(2 if good else 5)]
            if good:
                steps.append(Step("So the answer is 1650.", "finish", "1650", "Episode finished with the answer: 1650",
                                  ""))
            traj = Trajectory(id=f"q-{i:05d}", task="world", method="react", model=name, seed=0,
                              question=f"When was the city whose mayor is person {i} founded?", gold="1650",
                              steps=steps, answer="1650" if good else None,
                              score={"em": float(good or i % 4 == 0), "f1": float(good)}, success=good or i % 4 == 0)
            lines.append(json.dumps(traj.to_record()))
        (folder / "trajectories.jsonl").write_text("\n".join(lines) + "\n")
        (folder / "metrics.json").write_text(json.dumps({"questions": n, "em": 1.0 if good else 0.25}))
        (folder / "config.json").write_text(json.dumps({"task": "world", "data": str(root / "gone"), "split": "test"}))
        folders.append(folder)
    return folders


def test_a_large_page_stays_compact(tmp_path):
    """What the page loads at once grows by a few hundred bytes a question (its speed: bench/report_page.py)."""
    n = 3000
    folders = synthetic_runs(tmp_path, n)
    write_html(folders, tmp_path / "html", plots=False)
    data_bytes = (tmp_path / "html" / "data.js").stat().st_size
    steps = sorted((tmp_path / "html" / "steps").iterdir())
    steps_bytes = sum(p.stat().st_size for p in steps)
    raw_bytes = sum((f / "trajectories.jsonl").stat().st_size for f in folders)
    assert data_bytes / n < 250  # the index: what the page loads at once
    assert len(steps) == -(-n // CHUNK) and steps_bytes < raw_bytes / 3  # repeated observations kept once
    data = read_script(tmp_path / "html" / "data.js", "window.FIREFLAN_DATA = ")
    assert {o["id"]: o["count"] for o in data["outcomes"]} == {"both-right": 750, "only-eval-finetuned-right": 2250}


def test_page_data_keeps_questions_missing_from_a_run():
    rec = Trajectory(id="a", task="world", method="react", model="m", seed=0, question="Q?", gold="x").to_record()
    runs = [{"name": "p", "trajectories": {"a": rec}},
            {"name": "f", "trajectories": {"a": rec, "b": {**rec, "id": "b"}}}]
    index, chunks = page_data(runs)
    assert [q[0] for q in index["questions"]] == ["a", "b"] and index["questions"][1][6][0] is None
    assert index["outcomes"] == [{"id": "both-wrong", "label": "both wrong", "count": 1},
                                 {"id": "missing", "label": "not in every run", "count": 1}]
    assert chunks[0]["questions"][1][1][0] is None


# --------------------------------------------------------------------------- the browser

def text_of(selector: str) -> str:
    return f"[...document.querySelectorAll({json.dumps(selector)})].map(e => e.textContent).join('\\n')"


def test_the_page_in_a_real_browser(run, browser, tmp_path):
    """Overview; filter to the bridge questions only the fine-tuned model got right; open the first: the two
    trajectories side by side, the prompted one repeating its search; then the training and corpus view."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    index = write_html([run / "eval-prompted", run / "eval-finetuned"], tmp_path / "html")
    tab = browser.open(index.as_uri())

    assert "eval-finetuned" in tab.js(text_of("#overview table"))
    assert tab.wait("[...document.images].length >= 3 && [...document.images].every(i => i.naturalWidth > 0)")
    tab.screenshot(shots, "1-overview.png")

    tab.js("document.querySelector('nav [data-view=questions]').click()")
    tab.js("""for (const [id, value] of [['filter-type', 'bridge'], ['filter-outcome', 'only-eval-finetuned-right']]) {
                const s = document.getElementById(id); s.value = value; s.dispatchEvent(new Event('change')); }""")
    data = read_script(tmp_path / "html" / "data.js", "window.FIREFLAN_DATA = ")
    bridge, only_ft = data["types"].index("bridge"), [o["id"] for o in data["outcomes"]].index(
        "only-eval-finetuned-right")
    expected = [q[0] for q in data["questions"] if q[4] == bridge and q[5] == only_ft]
    assert expected, "the test runs need a bridge question that only the fine-tuned model answers"
    assert tab.js("document.getElementById('count').textContent") == f"{len(expected)} of 24 questions"
    assert tab.js("[...document.querySelectorAll('.row')].map(r => r.dataset.id)") == expected
    assert "outcome=only-eval-finetuned-right" in tab.js("location.hash")
    tab.screenshot(shots, "2-filtered.png")

    loop = data["why"].index("loop: unfinished, the last outputs unreadable or repeated")
    choose = "{{const s = document.getElementById('filter-why'); s.value = '%s'; s.dispatchEvent(new Event('change'))}}"
    tab.js(choose % f"0:{loop}")
    both = [q[0] for q in data["questions"] if q[0] in expected and q[6][0][3] == loop]  # with the filters above
    assert tab.js("[...document.querySelectorAll('.row')].map(r => r.dataset.id)") == both and both
    tab.js(choose % "")
    looped = next(q[0] for q in data["questions"] if q[0] in expected and q[6][0][1] == 6)  # the prompted loop
    tab.js(f"document.querySelector('.row[data-id=\"{looped}\"]').click()")
    tab.wait(f"document.getElementById('detail').dataset.shown === {json.dumps(looped)}")
    heads = tab.js(text_of(".runhead"))
    assert "eval-prompted" in heads and "✗ wrong" in heads and "eval-finetuned" in heads and "✓ right" in heads
    assert "why: loop" in heads
    question = next(q for q in data["questions"] if q[0] == looped)
    assert tab.js("document.querySelector('#detail h2').textContent") == question[1]
    assert question[2] in tab.js(text_of("#detail .obs mark.gold"))  # the fine-tuned model found the gold answer
    assert tab.js("document.querySelectorAll('#detail .obs mark.fact').length") >= 2
    assert tab.js("document.querySelectorAll('#detail .badge.repeat').length") == 5  # the prompted loop
    assert "<u>not underlined</u>" in tab.js(text_of("#detail .step"))  # model output is shown as text,
    assert tab.js("document.querySelector('#detail u')") is None  # not as HTML
    tab.js("window.scrollTo(0, 0)")
    tab.screenshot(shots, "3-side-by-side.png", height=1400)

    tab.js("document.querySelector('nav [data-view=training]').click()")
    tab.wait("document.querySelector('#training img') && document.querySelector('#training img').naturalWidth > 0")
    training = tab.js("document.getElementById('training').innerText")  # what is rendered, not hidden text
    assert tab.js("document.getElementById('questions').getClientRects().length") == 0  # the other views hide
    assert "mix by capability" in training and "mix by negatives" in training and "last 0." in training
    tab.screenshot(shots, "4-training-corpus.png", height=1300)

    linked = browser.open(f"{index.as_uri()}#view=questions&outcome=both-wrong&q={expected[0]}")  # a shared link
    linked.wait(f"document.getElementById('detail').dataset.shown === {json.dumps(expected[0])}")
    assert linked.js("document.getElementById('filter-outcome').value") == "both-wrong"
    quoted = 0
    for q in data["questions"]:  # every question's detail: hostile model output and pages stay text
        linked.js(f"location.hash = {json.dumps('#view=questions&q=' + q[0])}")
        linked.wait(f"document.getElementById('detail').dataset.shown === {json.dumps(q[0])}")
        assert linked.js("typeof window.PWNED") == "undefined"
        assert linked.js("document.querySelectorAll('#detail img, #detail script').length") == 0
        quoted += HOSTILE in linked.js("[...document.querySelectorAll('#detail .obs')].map(o => o.textContent).join()")
    assert quoted == len(data["questions"])  # every episode read a page: its markup shown as the text it is
    assert HOSTILE in linked.js("document.getElementById('detail').textContent")  # the last is a wrong one
    print(f"\nscreenshots: {shots} (copied to {SCREENSHOTS})")


def test_thousands_of_questions_in_the_browser(browser, tmp_path):
    index = write_html(synthetic_runs(tmp_path, 3000), tmp_path / "html", plots=False)
    tab = browser.open(f"{index.as_uri()}#view=questions")
    assert tab.js("document.getElementById('count').textContent") == "3000 of 3000 questions"
    assert tab.js("document.querySelectorAll('.row').length") < 80  # only the rows in sight are drawn
    tab.js("const s = document.getElementById('filter-outcome'); s.value = 'both-right'; "
           "s.dispatchEvent(new Event('change'))")  # how fast: bench/report_page.py
    assert tab.js("document.getElementById('count').textContent") == "750 of 3000 questions"
    tab.js("const t = document.getElementById('filter-text'); t.value = 'person 2999'; "
           "t.dispatchEvent(new Event('input'))")
    tab.wait("document.getElementById('count').textContent === '0 of 3000 questions'")
    tab.js("document.getElementById('list').scrollTop = 2900 * 30")  # no match: the list is empty, scrolling is fine
    tab.js("location.hash = '#view=questions&q=q-02999'")
    tab.wait("document.getElementById('detail').dataset.shown === 'q-02999'")  # the last steps file, loaded now
    assert tab.js("document.querySelectorAll('#detail .step:not(.empty)').length") == 5 + 3
    tab.screenshot(tmp_path, "5-large-page.png")
