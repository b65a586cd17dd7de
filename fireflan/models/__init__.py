"""Models: one interface (`fireflan.models.base`), one module per backend, and `load_model` for every stage."""

from fireflan.models.base import BudgetExceeded, Model, Usage, cut_at_stop
from fireflan.models.load import load_model

__all__ = ["BudgetExceeded", "Model", "Usage", "cut_at_stop", "load_model"]
