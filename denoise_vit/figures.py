"""Figures people look at: denoised batches and training curves (PNG, no screen needed)."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save_batch_figure(path, inputs, targets, outputs, *, title=None):
    """The course's figure: rows of inputs, targets, outputs and |output - target|.

    Tensors (N, 1, H, W); one column per image and one colour scale [0, 1] for every row, so
    the error row reads on the same scale as the images.
    """
    rows = {"input": inputs, "target": targets, "output": outputs,
            "|output - target|": (outputs - targets).abs()}
    n = inputs.shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.9 * n + 0.8, 1.9 * len(rows) + 0.4),
                             squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            im = ax.imshow(images[c, 0].detach().float().cpu().numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    fig.colorbar(im, ax=axes, shrink=0.6, label="intensity (one scale for all rows)")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def save_curves(path, rows, *, noisy_psnr=None):
    """Train loss and eval PSNR against epoch, from the metrics rows (dicts) of a run."""
    epochs = [r["epoch"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    ax1.plot(epochs, [r["train_loss"] for r in rows], marker="o")
    ax1.set_yscale("log")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("train MSE")
    ax1.set_title("training loss")
    ax2.plot(epochs, [r["eval_psnr"] for r in rows], marker="o", label="denoised")
    if noisy_psnr is not None:
        ax2.axhline(noisy_psnr, color="grey", linestyle="--", label="noisy input")
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("eval PSNR (dB)")
    ax2.set_title("evaluation PSNR")
    ax2.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
