"""The course notebooks (experiments/notebooks/): executed from their jupytext sources, and the
committed .ipynb checked against those sources.

Every answer in a notebook is an `assert`, so executing it is the test: a package change that
changes an answer (the course preset's depth, a token grouping, a parameter count) fails here.
Training is shortened by DENOISE_VIT_NOTEBOOK_QUICK=1; figures go to a temporary folder.
"""
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

FOLDER = Path(__file__).resolve().parents[1] / "experiments" / "notebooks"
NOTEBOOKS = ["course_vit_denoiser", "video_extension"]


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes(name, tmp_path, monkeypatch):
    # the kernel is a child process: it inherits these
    monkeypatch.setenv("DENOISE_VIT_NOTEBOOK_QUICK", "1")
    monkeypatch.setenv("DENOISE_VIT_NOTEBOOK_OUT", str(tmp_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # one thread: two per process oversubscribe a shared 2-core machine (10x slower there)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    nb = jupytext.read(FOLDER / f"{name}.py")
    # a failing assert raises CellExecutionError, naming the cell
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(FOLDER)}}).execute()
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code and all(cell.execution_count for cell in code)
    assert not any(out.get("output_type") == "error" for cell in code for out in cell.outputs)
    assert sorted(p.name for p in tmp_path.glob("*.png"))      # its figures went where told


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_matches_its_source_and_was_executed(name):
    source = jupytext.read(FOLDER / f"{name}.py")
    committed = nbformat.read(FOLDER / f"{name}.ipynb", as_version=4)
    assert [(c.cell_type, c.source) for c in committed.cells] == \
        [(c.cell_type, c.source) for c in source.cells], \
        f"{name}.ipynb is stale: run python experiments/notebooks/build.py {name}"
    code = [cell for cell in committed.cells if cell.cell_type == "code"]
    # executed top to bottom, in order, without an error
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1))
    assert not any(out.get("output_type") == "error" for cell in code for out in cell.outputs)
    # and not with the test suite's shortened training
    text = "".join(out.get("text", "") for cell in code for out in cell.outputs)
    assert "mode: quick" not in text
