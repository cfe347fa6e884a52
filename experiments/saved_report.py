"""The `--render-only` step the experiment scripts share: read the json a run wrote, or exit 2
with one line when there is none."""
import json


def read_saved(parser, path, script, what="run it first"):
    """The report at `path`; without one, `parser` exits 2 naming it."""
    if not path.is_file():
        parser.exit(2, f"{script}: no {path} to render; {what}\n")
    return json.loads(path.read_text())
