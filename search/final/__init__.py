"""The final model: built after the search from validation data alone, scored once on ``test.p``."""

from .metrics import classification_report
from .report import evaluate_on_test
from .retrain import retrain_best

__all__ = ["classification_report", "evaluate_on_test", "retrain_best"]
