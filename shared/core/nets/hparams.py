"""Training hyper-parameter defaults: one home for ``TrainOptions``, the CLI and the settings.

Standard library only, so the command line and the service settings can read them without
importing numpy or TensorFlow. The defaults are the article's baseline.
"""

from __future__ import annotations

from typing import Final

ARCHITECTURES: Final = ("baseline", "bilstm")
ARCHITECTURE: Final = "baseline"
EPOCHS: Final = 60
BATCH_SIZE: Final = 32
LEARNING_RATE: Final = 1e-3
PATIENCE: Final = 8
SEED: Final = 42
VALID_FRACTION: Final = 0.15
TEST_FRACTION: Final = 0.15
