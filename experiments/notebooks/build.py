"""Regenerate the notebooks' .ipynb from their jupytext sources and execute them.

    OMP_NUM_THREADS=1 python experiments/notebooks/build.py            # both notebooks
    OMP_NUM_THREADS=1 python experiments/notebooks/build.py video_extension   # one of them

(One thread per process: on a 2-core machine shared with other jobs, two oversubscribe it.)

Each `NAME.py` (jupytext py:percent, the reviewed source) is read with jupytext, executed top to
bottom with nbclient in this folder (so the figures land in docs/course/), and written to
`NAME.ipynb` with its outputs. Training length follows the notebooks' own rule: the course's
length on a GPU, a few minutes on a CPU; `DENOISE_VIT_NOTEBOOK_QUICK=1` shortens it to seconds
(what the test suite does; don't commit notebooks built that way).
"""
import argparse
import sys
import time
from pathlib import Path

import jupytext
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
NOTEBOOKS = ("course_vit_denoiser", "video_extension")


def execute(name, *, timeout=900):
    """Execute HERE/NAME.py; returns the executed notebook (nbformat)."""
    nb = jupytext.read(HERE / f"{name}.py")
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(HERE)}}).execute()
    return nb


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"notebooks to build (default: all): {', '.join(NOTEBOOKS)}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(NOTEBOOKS))
    if unknown:
        parser.error(f"unknown notebook(s) {', '.join(unknown)}; choose from {', '.join(NOTEBOOKS)}")
    for name in args.names or NOTEBOOKS:
        start = time.perf_counter()
        nb = execute(name)
        jupytext.write(nb, HERE / f"{name}.ipynb")
        print(f"{name}.ipynb: executed in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
