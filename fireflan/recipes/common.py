"""What every recipe shares: options from a TOML file and flags, stages that resume, the final table.

    options = read_options(HotpotQARecipe, config="recipes/hotpotqa.toml", max_steps=40)
    result = stage(out, "train", train_config, train)   # skipped when it finished with these options
"""

from __future__ import annotations

import json
import time
from dataclasses import MISSING, asdict, fields
from pathlib import Path

from fireflan.evaluate import OUTCOMES
from fireflan.io import DataError, write_json
from fireflan.options import as_text_lists, check_flags, claimed, one_line_errors, typed, with_long_help, with_signature
from fireflan.report import ReportConfig, report
from fireflan.report.table import by_measure, text


def load_config(path) -> dict:
    """Options from a recipe TOML file; flags given on the command line win over it."""
    import tomllib

    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise DataError(path, "no such file") from None
    except tomllib.TOMLDecodeError as e:
        raise DataError(path, f"not valid TOML ({e})") from None


def read_options(cls, config: str | None = None, **flags):
    """The recipe's options: its dataclass defaults, then the TOML file, then the flags (each checked
    against its field's type)."""
    from_file = typed(cls, load_config(config), f"{config}: ") if config else {}
    options = {**from_file, **typed(cls, as_text_lists(cls, flags))}
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(options) - names)
    if unknown:
        where = f"{config}: " if config and set(unknown) & set(load_config(config)) else ""
        raise ValueError(f"{where}unknown option(s) {unknown}; the options are {', '.join(sorted(names))}")
    return cls(**options)


def same_options(saved: dict, config) -> bool:
    """Whether a stage that finished with the options `saved` ran as `config` asks. An option the stage did
    not record (one a later version of fireflan added) counts as the same when `config` leaves it at its
    default, which is what the stage did; options no longer known are passed over."""
    options = json.loads(json.dumps(asdict(config)))
    defaults = {f.name: f.default for f in fields(config) if f.default is not MISSING}
    for key, value in options.items():
        if key in saved:
            if saved[key] != value:
                return False
        elif key not in defaults or json.loads(json.dumps(defaults[key])) != value:
            return False
    return True


def stage(out: Path, name: str, config, run):
    """Run `run(config)` unless OUT/stages/NAME.json records that it finished with the same options
    (`same_options`); returns its result (the stage's summary). A stage that stopped half-way resumes by
    itself."""
    marker = Path(out) / "stages" / f"{name}.json"
    options = json.loads(json.dumps(asdict(config)))
    if marker.is_file():
        saved = json.loads(marker.read_text())
        if same_options(saved.get("config") or {}, config):
            print(f"== {name}: finished before ({saved['seconds']:.0f} s), nothing to do")
            return saved["result"]
    print(f"== {name}", flush=True)
    marker.unlink(missing_ok=True)  # a run that is killed half-way must not leave a marker of an earlier one
    started = time.time()
    result = run(config)
    marker.parent.mkdir(parents=True, exist_ok=True)
    seconds = round(time.time() - started, 1)
    write_json(marker, {"config": options, "seconds": seconds, "result": result}, default=str)
    print(f"   {name}: {seconds:.0f} s", flush=True)
    return json.loads(json.dumps(result, default=str))


ROWS = [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("f1", "F1"), ("turns", "turns per question"),
        ("format_error_rate", "format errors (of steps)"),
        ("hallucinated_observation_rate", "invented observations (of steps)"),
        ("tool_misuse", "tool misuse, no tools offered"), ("prompt_tokens_per_question", "prompt tokens per question"),
        ("seconds_per_question", "seconds per question")]


BUDGET_ROWS = [("em", "EM"), ("em_ci95", "EM, 95% interval"), ("f1", "F1"),
               ("calls_per_question", "model calls per question"),
               ("prompt_tokens_per_question", "prompt tokens per question"),
               ("completion_tokens_per_question", "generated tokens per question"),
               ("seconds_per_question", "seconds per question"), ("branch_agreement", "branch agreement"),
               ("backtracked_steps_per_question", "steps taken back per question")]


def report_pages(out: Path, name: str, folders) -> dict:
    """OUT/NAME.md with its plots and the page OUT/html-NAME/index.html over the given run folders;
    returns their paths {"report": ..., "page": ...}."""
    page = report(ReportConfig(runs=",".join(map(str, folders)), out=str(Path(out) / f"{name}.md"),
                               html=str(Path(out) / f"html-{name}")))
    return {"report": str(page), "page": str(Path(out) / f"html-{name}" / "index.html")}


def comparison(runs: dict[str, dict], rows=ROWS) -> str:
    """A plain-text table, one column per run ({name: metrics}), one row per measure."""
    return text(by_measure(runs, rows))


def outcome_table(runs: dict[str, dict]) -> str | None:
    """Why each run's episodes ended as they did (`evaluate.outcome`), as a plain-text table of counts;
    None when no run has them (a task without wiki paragraphs)."""
    if not any(m.get("outcomes") for m in runs.values()):
        return None
    return comparison({n: m.get("outcomes") or {} for n, m in runs.items()}, list(OUTCOMES.items()))


def launch(fn, name: str) -> None:
    """Run a recipe's command line (python-fire); bad input ends with one line and exit status 2, as
    `python -m fireflan` does (`one_line_errors`)."""
    import sys

    import fire

    with one_line_errors(name):
        argv = with_long_help(sys.argv[1:])
        check_flags(fn, argv, f"python -m {name}")
        fire.Fire(fn, command=argv, name=name, serialize=lambda result: None)


def recipe_command(cls, main, summary: str):
    """The recipe's command: flags are the fields of `cls` (listed with their help by --help), plus
    `--config FILE`; flags given win over the file, the file over the defaults."""

    def cmd(config: str | None = None, **flags):
        options = read_options(cls, config, **flags)
        with claimed(options.out):  # its stage markers and report files are this run's alone while it runs
            return main(options)

    return with_signature(cmd, cls, summary, extra=(("config", None, "a TOML file of these options (flags win "
                                                                     "over it)"),))
