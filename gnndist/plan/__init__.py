"""The planner: predicts a run's epoch time, bytes and peak worker memory before training.

``calibration`` measures this machine's rates once (a JSON file), ``workload`` turns a partition's quality
report or a graph's shape into per-part sizes, ``model`` is the cost model (pure arithmetic), ``report``
prints plans and compares a run's prediction with what it measured.
"""
from gnndist.plan.calibration import Calibration, CalibrationError, calibration_key, load_calibration, load_or_measure, save_calibration
from gnndist.plan.model import Cluster, PartLoad, Prediction, Workload, predict
from gnndist.plan.workload import CutModel, GraphShape, from_quality, from_shape

__all__ = [
    "Calibration",
    "CalibrationError",
    "Cluster",
    "CutModel",
    "GraphShape",
    "PartLoad",
    "Prediction",
    "Workload",
    "calibration_key",
    "from_quality",
    "from_shape",
    "load_calibration",
    "load_or_measure",
    "predict",
    "save_calibration",
]
