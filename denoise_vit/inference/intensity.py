"""Intensity normalisation: put a user's image on the intensity scale the model was trained on.

A model trained on the synthetic cells saw inputs with background 0 and bright objects below ~1;
a uint16 microscope image has counts in the thousands. Before denoising, the image's low and
high percentiles (1 and 99.8 by default, as CARE does) are mapped onto the values that the same
percentiles had in the model's training inputs; the output is mapped back by the inverse, so it
comes out in the input's units. The checkpoint records the training values (`training_record`);
each denoised file records its own mapping (`Normalization.as_dict`).
"""
from dataclasses import asdict, dataclass

import numpy as np

PERCENTILES = (1.0, 99.8)


def percentile_range(values, percentiles=PERCENTILES):
    """(low, high) percentiles of an array or tensor, as floats.

    Sparse images (mostly background) can have equal percentiles; then the minimum and maximum
    are used instead, so the mapping keeps a finite, non-zero scale whenever the image is not
    constant.
    """
    # in the array's own dtype: numpy partitions one copy of that size (a float64 copy would cost
    # 8 bytes per pixel, 8x a uint8 image); only the two results are interpolated in float64
    a = np.asarray(values.detach().cpu() if hasattr(values, "detach") else values)
    low, high = (float(v) for v in np.percentile(a, percentiles))
    if not high > low:
        low, high = float(a.min()), float(a.max())
    return low, high


def training_record(inputs, percentiles=PERCENTILES):
    """What a checkpoint stores about its training inputs: the percentiles and their values."""
    low, high = percentile_range(inputs, percentiles)
    return {"percentiles": [float(p) for p in percentiles], "low": low, "high": high}


@dataclass
class Normalization:
    """The affine map x -> (x - low) * scale + target_low, with its inverse.

    low, high: the input's values at the percentiles; target_low, target_high: the training
    inputs' values at the same percentiles.
    """
    low: float
    high: float
    target_low: float
    target_high: float
    percentiles: tuple = PERCENTILES

    @property
    def scale(self):
        # a constant image keeps its scale and is only shifted
        return (self.target_high - self.target_low) / (self.high - self.low) if self.high > self.low else 1.0

    def apply(self, x):
        return (x - self.low) * self.scale + self.target_low

    def invert(self, y):
        return (y - self.target_low) / self.scale + self.low

    def as_dict(self):
        return {**asdict(self), "percentiles": list(self.percentiles)}

    @classmethod
    def identity(cls):
        return cls(0.0, 1.0, 0.0, 1.0)

    @classmethod
    def fit(cls, values, record):
        """The map taking `values`' percentiles onto those recorded for the training inputs.

        Raises ValueError when the two ranges give no usable scale (a range so narrow that its
        inverse overflows float64, or a training range of zero width).
        """
        percentiles = tuple(record.get("percentiles", PERCENTILES))
        low, high = percentile_range(values, percentiles)
        norm = cls(low, high, float(record["low"]), float(record["high"]), percentiles)
        if not (np.isfinite(norm.scale) and norm.scale > 0):
            raise ValueError(f"the intensity range {low:.6g}..{high:.6g} cannot be mapped onto "
                             f"the training range {norm.target_low:.6g}..{norm.target_high:.6g}")
        return norm
