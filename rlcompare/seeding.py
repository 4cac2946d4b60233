"""One seeding mechanism: every run derives named, independent streams from its seed alone.

No global RNG is touched, so a run gives the same numbers alone, in a batch, or in a worker.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RunSeeds:
    """Named random streams of one run (``agent``, ``env``, ``eval``, ``torch``, ...)."""

    seed: int

    def sequence(self, stream: str) -> np.random.SeedSequence:
        # crc32 rather than hash(): Python salts str hashes per process.
        return np.random.SeedSequence(self.seed, spawn_key=(zlib.crc32(stream.encode()),))

    def rng(self, stream: str) -> np.random.Generator:
        """A fresh numpy Generator for ``stream``; the same stream always starts the same."""
        return np.random.default_rng(self.sequence(stream))

    def int_seed(self, stream: str) -> int:
        """A 31-bit integer seed for APIs that take ints (env.reset, torch, action spaces)."""
        return int(self.sequence(stream).generate_state(1, dtype=np.uint32)[0] >> 1)
