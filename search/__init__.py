"""Running searches: data loading, the Optuna study, trial training, the final model."""
from .config import SearchConfig
from .errors import DataError, UserError

__all__ = ["DataError", "SearchConfig", "UserError"]
