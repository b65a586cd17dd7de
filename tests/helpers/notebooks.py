"""Running the notebooks in notebooks/ as a user's Jupyter would: a fresh kernel, the notebook's folder as
the working directory, every cell in order; parameters set the way papermill does (a cell after the one
tagged `parameters`)."""

from __future__ import annotations

from pathlib import Path

from helpers import ROOT

NOTEBOOKS = ROOT / "notebooks"


def with_parameters(nb, values: dict):
    """`nb` with a cell assigning `values` right after its `parameters` cell (which must exist)."""
    import nbformat

    at = next((i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])), None)
    assert at is not None, "the notebook has no cell tagged `parameters`"
    source = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, cell)
    return nb


def run_notebook(name: str, values: dict, timeout: int = 900, folder: Path = NOTEBOOKS):
    """The executed notebook FOLDER/NAME (outputs filled in), run in FOLDER; a failing cell raises nbclient's
    CellExecutionError."""
    import nbformat
    from nbclient import NotebookClient

    nb = with_parameters(nbformat.read(Path(folder) / name, as_version=4), values)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(folder)}}).execute()
    return nb


def outputs(nb, kind: str) -> list[str]:
    """Every output of `kind` ("text/html", "image/png", "text/markdown", "stream") in the notebook."""
    found = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if kind == "stream" and out.get("output_type") == "stream":
                found.append(out.get("text", ""))
            elif kind in out.get("data", {}):
                value = out["data"][kind]
                found.append(value if isinstance(value, str) else "".join(value))
    return found


def source_lines(path: Path) -> list[str]:
    import nbformat

    nb = nbformat.read(path, as_version=4)
    return [line for cell in nb.cells if cell.cell_type == "code" for line in cell.source.splitlines()]
