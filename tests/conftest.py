import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)   # a CLI call's thread policy must not outlive its test


@pytest.fixture(scope="session")
def trained_checkpoint(tmp_path_factory):
    """One briefly trained image model for every test file that needs a real checkpoint
    (its config, intensity record and training state included): trained once per session."""
    from denoise_vit.training.config import load_config
    from denoise_vit.training.run import run_training
    tmp = tmp_path_factory.mktemp("trained")
    cfg = load_config(None, ["model.depth=1", "model.embed_dim=16", "model.num_heads=2",
                             "data.size=32", "batch_size=8", "steps_per_epoch=3", "epochs=1",
                             "data.eval_size=16", "name=c"], {"out_dir": str(tmp)})
    run_training(cfg, progress=False, log=lambda *a: None)
    return tmp / "c" / "checkpoint_last.pt"
