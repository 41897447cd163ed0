"""Evaluation: metrics, calibration and reports."""

from emotrace.evaluation.calibration import expected_calibration_error, fit_temperature
from emotrace.evaluation.metrics import compute_metrics, softmax

__all__ = ["compute_metrics", "expected_calibration_error", "fit_temperature", "softmax"]
