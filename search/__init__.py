"""Running searches: data -> engine (study, trials) -> final model; the command line (``cli/``) on top.

``search.schema`` is the contract with ``results/``: the keys and files a study leaves behind.
"""
