"""HUSAI: Hunting for Stable AI Features.

A library of pure functions and small classes: the modular-addition task, the
grokked ground-truth transformer, Fourier analysis, SAE architectures and their
training engine, and stability / recovery metrics. No file paths, no params.yaml,
no printing: the DVC stages in ``stages/`` do the I/O.
"""

__version__ = "0.1.0"
