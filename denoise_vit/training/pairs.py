"""Training data from a folder of image pairs (Noise2Noise: two noisy copies of each scene).

Layout: `pairs_dir/input/NAME` and `pairs_dir/target/NAME` hold the two images of each pair
under the same file name (any format denoise_vit.inference.io reads; stacks give one pair per plane).
For Noise2Noise both are noisy; with clean images in target/ the same source trains with clean
targets. An optional `pairs_dir/clean/NAME` is used, when present, as the evaluation target.

Each pair is put on a common intensity scale: the input's 1st and 99.8th percentiles go to 0
and 1, and the same map is applied to its target (and clean image), so pairs from files of
different ranges (uint8, uint16, float) train together. Batches are random crops of
`data.size` with a random flip / 90-degree rotation, drawn with a seeded CPU generator.
"""
from pathlib import Path

import torch

from ..checks import image_size
from ..errors import ConfigError
from ..inference.intensity import Normalization
from ..inference.io import SUFFIXES, guess_axes, read_image, to_stack

ROLES = ("input", "target", "clean")


def crop_size(size):
    return image_size(size, "data.size")


def _planes(path):
    array, meta = read_image(path)
    axes = meta.get("axes") or guess_axes(array.shape)[0]
    return torch.from_numpy(to_stack(array, axes).copy())  # (D, C, H, W) float32


def load_pairs(pairs_dir):
    """{role: (N, C, H, W) float32} for every plane of every pair, normalised per pair."""
    root = Path(pairs_dir)
    folders = {role: root / role for role in ROLES}
    for role in ("input", "target"):
        if not folders[role].is_dir():
            raise ConfigError(f"data.pairs_dir {root}: no {role}/ folder (pairs are "
                              f"{root}/input/NAME and {root}/target/NAME)")
    names = {role: sorted(p.name for p in folders[role].iterdir()
                          if p.suffix.lower() in SUFFIXES and not p.name.startswith("."))
             for role in ROLES if folders[role].is_dir()}
    if not names["input"]:
        raise ConfigError(f"data.pairs_dir {root}: no image files in input/")
    missing = sorted(set(names["input"]) ^ set(names["target"]))
    if missing:
        raise ConfigError(f"data.pairs_dir {root}: {len(missing)} file(s) without a partner in "
                          f"input/ and target/, e.g. {', '.join(missing[:3])}")
    has_clean = "clean" in names
    out = {role: [] for role in ROLES}
    for name in names["input"]:
        stacks = {role: _planes(folders[role] / name)
                  for role in ROLES if role != "clean" or has_clean}
        shapes = {role: tuple(s.shape) for role, s in stacks.items()}
        if len(set(shapes.values())) > 1:
            raise ConfigError(f"data.pairs_dir {root}: {name} has different shapes in "
                              + ", ".join(f"{r}/ {'x'.join(map(str, s))}" for r, s in shapes.items()))
        norm = Normalization.fit(stacks["input"], {"low": 0.0, "high": 1.0})
        for role, stack in stacks.items():
            out[role].append(norm.apply(stack))
    return {role: planes for role, planes in out.items() if planes}


class PairStream:
    """Endless (input, target) batches of random crops, each (B, C, h, w), on `device`.

    `state_dict` / `load_state_dict` resume the exact sequence of crops, like SyntheticStream.
    """

    def __init__(self, pairs, batch_size, *, size, seed=0, device="cpu"):
        self.pairs = pairs
        self.batch_size = batch_size
        self.size = crop_size(size)
        self.device = torch.device(device)
        self.seed = seed
        self.kind = "pairs"
        self.step = 0
        for stack in pairs["input"]:
            if stack.shape[-2] < self.size[0] or stack.shape[-1] < self.size[1]:
                raise ConfigError(f"a pair of {stack.shape[-2]}x{stack.shape[-1]} pixels is smaller "
                                  f"than the crop data.size {self.size[0]}x{self.size[1]}")
        # every plane of every file, drawn in proportion to its area
        self.index = [(f, d) for f, s in enumerate(pairs["input"]) for d in range(s.shape[0])]
        self.weights = torch.tensor([float(pairs["input"][f].shape[-2] * pairs["input"][f].shape[-1])
                                     for f, _ in self.index])
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self):
        return self

    def crops(self, n, roles, augment=True):
        """n random crops; one tensor (n, C, h, w) per role."""
        g, (h, w) = self.generator, self.size
        picks = torch.multinomial(self.weights, n, replacement=True, generator=g).tolist()
        out = {role: [] for role in roles}
        for i in picks:
            f, d = self.index[i]
            height, width = self.pairs["input"][f].shape[-2:]
            y = int(torch.randint(height - h + 1, (), generator=g))
            x = int(torch.randint(width - w + 1, (), generator=g))
            turns, flip = (int(torch.randint(4, (), generator=g)),
                           bool(torch.randint(2, (), generator=g))) if augment else (0, False)
            for role in roles:
                crop = self.pairs[role][f][d, :, y:y + h, x:x + w]
                if h == w:  # a non-square crop keeps its orientation
                    crop = torch.rot90(crop, turns, (-2, -1))
                out[role].append(crop.flip(-1) if flip else crop)
        return [torch.stack(out[role]) for role in roles]

    def __next__(self):
        inputs, targets = self.crops(self.batch_size, ("input", "target"))
        self.step += 1
        return inputs.to(self.device), targets.to(self.device)

    def state_dict(self):
        return {"generator_state": self.generator.get_state(), "step": self.step,
                "seed": self.seed, "kind": self.kind, "batch_size": self.batch_size}

    def load_state_dict(self, state):
        for key in ("kind", "batch_size"):
            if key in state and state[key] != getattr(self, key):
                raise ValueError(f"state was saved from a stream with {key}={state[key]!r}, "
                                 f"this one has {key}={getattr(self, key)!r}")
        self.generator.set_state(state["generator_state"].cpu())
        self.step = int(state.get("step", 0))
        self.seed = int(state.get("seed", self.seed))


def pair_eval_set(pairs, n, *, size, seed):
    """A fixed set of n crops (inputs, targets) on the CPU, without augmentation; the targets are
    the clean images when the folder has them, else the second noisy copies."""
    stream = PairStream(pairs, n, size=size, seed=seed)
    return tuple(stream.crops(n, ("input", "clean" if "clean" in pairs else "target"),
                              augment=False))
