"""Built-in synthetic traffic signs: the tool's default data set and the test data.

The real GTSRB pickles are large and not always at hand, yet every search needs
data that behaves like them: 43 imbalanced classes of small, cluttered,
badly lit 32x32 RGB crops in which speed limits differ only by their digits
and warning triangles only by their pictogram.  This package renders such
images from scratch with pure numpy, deterministically from a seed, and
writes them in the tutorial's pickle layout (``train.p``, ``valid.p``,
``test.p`` with ``features``/``labels``/``sizes``/``coords`` plus
``signnames.csv``), so the rest of the tool cannot tell it from the real
thing except by its accuracy.

Produce a data folder with::

    python run_search.py data synth --out DIR --n-train N

or from Python with ``write_synthetic_dataset(Path(DIR), n_train=N)``.

How an image is made: each class has a template (anti-aliased material
coverage maps drawn once with point-in-polygon and distance masks at 3x
supersampling; ``drawing`` holds the primitives, ``glyphs`` the shared plates
and pictogram pieces, ``signs`` the 43 class drawings); per image
(``rendering``) the template is coloured with jittered paints, warped by a
random homography (scale, position, +-15 degree rotation, perspective) through
an inverse-mapped 2x supersampled sampling grid, composited over random
clutter, then occluded, relit, blurred and noised. ``dataset`` draws the class
balance and writes the files.
"""

from __future__ import annotations

from .dataset import (
    DEFAULT_SIZES,
    GTSRB_CLASS_FREQUENCIES,
    GTSRB_TRAIN_COUNTS,
    PICKLE_PROTOCOL,
    SPLITS,
    SYNTH_VERSION,
    SynthSizes,
    generate_signs,
    write_synthetic_dataset,
)
from .drawing import N_PAINTS
from .signs import _templates as _templates  # the cached class templates (the tests check their mirroring)

__all__ = [
    "DEFAULT_SIZES",
    "GTSRB_CLASS_FREQUENCIES",
    "GTSRB_TRAIN_COUNTS",
    "N_PAINTS",
    "PICKLE_PROTOCOL",
    "SPLITS",
    "SYNTH_VERSION",
    "SynthSizes",
    "generate_signs",
    "write_synthetic_dataset",
]
