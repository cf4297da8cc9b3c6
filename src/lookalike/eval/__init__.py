"""Evaluation: shared metrics (`lookalike.eval.metrics`) and ground-truth readers
(`lookalike.eval.datasets`) for the formats of shared/data."""

from lookalike.eval import datasets, metrics

__all__ = ["datasets", "metrics"]
