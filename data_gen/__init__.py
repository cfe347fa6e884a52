"""Synthetic training data for denoise-vit: the course's cell images, fast, and videos of them.

    import torch
    from data_gen import generate_images
    inp, target = generate_images(256, size=64, generator=torch.Generator().manual_seed(0))

``generate_images`` / ``generate_noise2noise`` (data_gen.images), ``generate_videos``
(data_gen.video), ``GeneratorSettings`` (data_gen.settings), ``SyntheticStream`` /
``make_eval_set`` / ``check_generator_options`` (data_gen.streams). The distribution is
documented in docs/GENERATOR.md and in the data_gen.images module docstring.
"""

from data_gen.images import generate_images, generate_noise2noise
from data_gen.settings import GeneratorSettings
from data_gen.streams import SyntheticStream, check_generator_options, make_eval_set
from data_gen.video import generate_videos

__all__ = [
    "generate_images",
    "generate_noise2noise",
    "generate_videos",
    "GeneratorSettings",
    "SyntheticStream",
    "check_generator_options",
    "make_eval_set",
]
