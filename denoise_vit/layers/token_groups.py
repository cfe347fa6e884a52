"""Which video tokens attend to which: einops patterns from the token grid to attention sequences.

Video tokens live on a grid (B, nt, ns, D): nt temporal indices (frames or tubelets) times ns
spatial positions. An attention layer only ever sees sequences (B', L, D), so each kind of
mixing is one pattern that folds the axes that must *not* mix into the batch:

    "joint"  b t s d -> b (t s) d     every token with every token (ViViT Model 1)
    "space"  b t s d -> (b t) s d     within a frame, all positions (ViViT Models 2-4, TimeSformer)
    "time"   b t s d -> (b s) t d     across frames, at one spatial position

`ungroup` runs the same pattern backwards. Nothing else in the video models reshapes tokens
between layouts, so these three lines are the whole difference between the variants' mixing.
"""
from einops import rearrange

from ..errors import ConfigError

GROUPINGS = {
    "joint": "b t s d -> b (t s) d",
    "space": "b t s d -> (b t) s d",
    "time": "b t s d -> (b s) t d",
}


def _pattern(over):
    if over not in GROUPINGS:
        raise ConfigError(f"token grouping must be one of {tuple(GROUPINGS)}, not {over!r}")
    return GROUPINGS[over]


def group(x, over):
    """Tokens (B, nt, ns, D) -> attention sequences (B', L, D) for `over` in GROUPINGS."""
    return rearrange(x, _pattern(over))


def ungroup(x, over, nt, ns):
    """Sequences (B', L, D) made by `group(.., over)` -> tokens (B, nt, ns, D)."""
    source, target = _pattern(over).split(" -> ")
    return rearrange(x, f"{target} -> {source}", t=nt, s=ns)


def within(fn, x, over):
    """Apply `fn` ((B', L, D) -> (B', L, D), e.g. an Attention) to each group of tokens.

    x: (B, nt, ns, D) -> (B, nt, ns, D).
    """
    return ungroup(fn(group(x, over)), over, nt=x.shape[1], ns=x.shape[2])
