"""How configurations are chosen: samplers and pruners by name, and local search around the best trial.

Below the settings and the engine: ``search.config`` reads the names, the engine builds them.
"""

from .registry import PRUNERS, SAMPLERS, make_pruner, make_sampler

__all__ = ["PRUNERS", "SAMPLERS", "make_pruner", "make_sampler"]
