"""Hyperparameter search for Keras traffic-sign classifiers.

python run_search.py                      # the embedded default on synthetic signs (~5 min, CPU)
python run_search.py search --data-dir DIR --space all --trials 30 --timeout 1800
python run_search.py --help               # every command
"""

from cli import main

if __name__ == "__main__":
    raise SystemExit(main())
