"""Inference: tiling, intensity mapping, image files, the `denoise` command."""
