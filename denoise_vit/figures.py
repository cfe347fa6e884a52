"""Figures people look at: denoised batches and training curves (PNG, no screen needed)."""
from matplotlib.figure import Figure   # no pyplot: no global backend or figure state


def _image_grid(path, rows, *, column_titles=None, title=None, cell=1.9):
    """A grid of grey images, one row per label, all on one colour scale [0, 1].

    rows: {label: sequence of 2-D arrays}, every row of the same length.
    """
    n = len(next(iter(rows.values())))
    fig = Figure(figsize=(cell * n + 0.8, cell * len(rows) + 0.4))
    axes = fig.subplots(len(rows), n, squeeze=False)
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            im = ax.imshow(images[c], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0 and column_titles:
                ax.set_title(column_titles[c], fontsize=9)
            if c == 0:
                ax.set_ylabel(label)
    fig.colorbar(im, ax=axes, shrink=0.6, label="intensity (one scale for all rows)")
    if title:
        fig.suptitle(title)
    fig.savefig(path, dpi=100, bbox_inches="tight")


def save_batch_figure(path, inputs, targets, outputs, *, title=None):
    """The course's figure: rows of inputs, targets, outputs and |output - target|.

    Tensors (N, 1, H, W); one column per image and one colour scale [0, 1] for every row, so
    the error row reads on the same scale as the images.
    """
    rows = {"input": inputs, "target": targets, "output": outputs,
            "|output - target|": (outputs - targets).abs()}
    _image_grid(path, {label: [im[0].detach().float().cpu().numpy() for im in images]
                       for label, images in rows.items()}, title=title)


def save_curves(path, rows, *, noisy_psnr=None):
    """Train loss and eval PSNR against epoch, from the metrics rows (dicts) of a run."""
    epochs = [r["epoch"] for r in rows]
    fig = Figure(figsize=(10, 3.6))
    (ax1, ax2) = fig.subplots(1, 2)
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


def _frames(clip):
    """(C, T, H, W) or (T, H, W) tensor -> (T, H, W) numpy, first channel."""
    clip = clip.detach().float().cpu()
    return (clip[0] if clip.ndim == 4 else clip).numpy()


def save_sequence_figure(path, noisy, clean, denoised, *, title=None):
    """One clip: rows noisy / clean / denoised / |denoised - clean|, one column per frame.

    Tensors (C, T, H, W) (the first channel is drawn); one colour scale [0, 1] for every row.
    """
    rows = {"noisy": _frames(noisy), "clean": _frames(clean), "denoised": _frames(denoised)}
    rows["|denoised - clean|"] = abs(rows["denoised"] - rows["clean"])
    _image_grid(path, rows, column_titles=[f"frame {c}" for c in range(len(rows["noisy"]))],
                title=title, cell=1.7)


def save_sequence_gif(path, noisy, denoised, *, fps=4, title=None):
    """Animated GIF of one clip, noisy beside denoised, frame by frame (tensors (C, T, H, W))."""
    from matplotlib.animation import FuncAnimation, PillowWriter
    panels = {"noisy": _frames(noisy), "denoised": _frames(denoised)}
    fig = Figure(figsize=(5.2, 2.9))
    axes = fig.subplots(1, 2)
    images = []
    for ax, (label, frames) in zip(axes, panels.items()):
        images.append(ax.imshow(frames[0], cmap="gray", vmin=0, vmax=1))
        ax.set_title(label)
        ax.set_xticks([])
        ax.set_yticks([])
    caption = fig.suptitle("")

    def show(t):
        for image, frames in zip(images, panels.values()):
            image.set_data(frames[t])
        caption.set_text(f"{title + ': ' if title else ''}frame {t + 1}/{len(panels['noisy'])}")
        return images

    animation = FuncAnimation(fig, show, frames=len(panels["noisy"]), blit=False)
    animation.save(path, writer=PillowWriter(fps=fps), dpi=80)


def save_clip_figures(png, gif, noisy, clean, denoised, *, title=None):
    """The sequence figure (PNG) and the noisy-beside-denoised animation (GIF) of one clip."""
    save_sequence_figure(png, noisy, clean, denoised, title=title)
    save_sequence_gif(gif, noisy, denoised, title=title)
