"""The model families, registered once: each is a space alone, and ``all`` searches every one of them.

Adding a family is one module beside ``cnn.py`` and one line here; ``combined.py`` and the registry
(``registry.py``, what ``--space`` and the benchmarks offer) read this dict.
"""

from __future__ import annotations

from spaces import cnn, lenet
from spaces.space import Space

FAMILIES: dict[str, Space] = {"cnn": cnn, "lenet": lenet}
