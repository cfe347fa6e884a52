"""The command line: each sub-command works, and bad input is one clear message (exit 2)."""
import subprocess
import sys

import pytest

from denoise_vit.cli import main


@pytest.fixture()
def checkpoint(trained_checkpoint):
    return trained_checkpoint


def test_evaluate_prints_noisy_and_denoised(checkpoint, capsys):
    assert main(["evaluate", "--checkpoint", str(checkpoint), "--n", "8", "--seed", "5"]) == 0
    out = capsys.readouterr().out
    assert "evaluation set: 8 images, seed 5" in out
    assert "noisy" in out and "denoised" in out


def test_visualize_writes_png(checkpoint, tmp_path, capsys):
    out = tmp_path / "fig.png"
    assert main(["visualize", "--checkpoint", str(checkpoint), "-o", str(out), "--n", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_train_overrides_after_options(tmp_path, capsys):
    args = ["train", "--out-dir", str(tmp_path), "--no-progress", "model.depth=1", "data.size=16",
            "steps_per_epoch=2", "epochs=1", "batch_size=4", "data.eval_size=4", "name=cli"]
    assert main(args) == 0
    assert "done: 2 steps" in capsys.readouterr().out
    assert (tmp_path / "cli" / "checkpoint_last.pt").exists()


@pytest.mark.parametrize("argv, message", [
    (["train", "learning_rate=1"], "unknown config key 'learning_rate'"),
    (["train", "model.patch_size=6", "model.img_size=48"], "power-of-two patch_size"),
    (["train", "data.size=60"], "not divisible by patch_size"),
    (["train", "--config", "no-such-experiment"], "neither a file nor a preset"),
    (["evaluate", "--checkpoint", "missing.pt"], "checkpoint not found"),
    (["visualize", "--checkpoint", "missing.pt"], "checkpoint not found"),
])
def test_bad_input_is_one_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_visualize_into_missing_folder(checkpoint, capsys):
    assert main(["visualize", "--checkpoint", str(checkpoint), "-o", "/no/such/dir/x.png"]) == 2
    assert "output folder does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_python_dash_m_entry_point_reports_errors():
    proc = subprocess.run([sys.executable, "-m", "denoise_vit", "evaluate", "--checkpoint",
                           "/nonexistent.pt"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "checkpoint not found: /nonexistent.pt" in proc.stderr
    assert "Traceback" not in proc.stderr
