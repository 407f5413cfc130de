"""The engine: the Optuna study, its samplers, one trial's training, and the search loop.

It knows nothing of the command line or of ``results/``: callers pass callbacks in.
"""
