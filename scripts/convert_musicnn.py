"""Convert a musicnn TF1 checkpoint into the ``.npz`` that genreflow ships (run once, offline).

    pip download --no-deps musicnn -d /tmp/musicnn && unzip /tmp/musicnn/*.whl -d /tmp/musicnn
    python scripts/convert_musicnn.py /tmp/musicnn/musicnn/MSD_musicnn/ \
        --licence /tmp/musicnn/musicnn-0.1.0.dist-info/LICENSE.md

The musicnn package itself is not a dependency (it pins numpy<1.17); its checkpoint is read with
``tf.compat.v1.train.NewCheckpointReader``. Optimiser slots (Adam) are dropped; every other
variable is stored as float32 under its checkpoint name (``/`` written as ``:``), unchanged.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

OUT_DIR = Path(__file__).resolve().parents[1] / "shared" / "core" / "nets" / "musicnn_weights"


def main() -> int:
    """Read the checkpoint, write ``<name>.npz`` and the licence, and check the copy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint", type=Path, help="checkpoint folder, e.g. .../MSD_musicnn/")
    parser.add_argument("--licence", type=Path, required=True, help="musicnn's LICENSE.md")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()

    import tensorflow as tf

    reader = tf.compat.v1.train.NewCheckpointReader(str(args.checkpoint) + "/")
    names = sorted(
        n for n in reader.get_variable_to_shape_map() if "Adam" not in n and "power" not in n
    )
    arrays = {n.replace("/", ":"): reader.get_tensor(n).astype(np.float32) for n in names}
    args.out.mkdir(parents=True, exist_ok=True)
    target = args.out / f"{args.checkpoint.resolve().name}.npz"
    np.savez(target, **arrays)
    shutil.copyfile(args.licence, args.out / "LICENSE")
    with np.load(target) as saved:
        for name in names:
            if not np.array_equal(saved[name.replace("/", ":")], reader.get_tensor(name)):
                print(f"{name}: the saved copy differs from the checkpoint", file=sys.stderr)
                return 1
    n_values = sum(a.size for a in arrays.values())
    print(f"{target}: {len(arrays)} variables, {n_values:,} values, identical to the checkpoint")
    return 0


if __name__ == "__main__":
    sys.exit(main())
