"""A calibration written by hand (round numbers: the arithmetic of a plan can be checked on paper; no measuring)."""
import pytest

from gnndist.plan import Calibration, calibration_key, save_calibration


def hand_calibration(key: dict) -> Calibration:
    return Calibration(
        key=key,
        aggregation_s_per_element=1e-9,
        matmul_flops_per_s=1e10,
        train_factor=3.0,
        minibatch_factor=4.0,
        step_overhead_s=0.001,
        sample_s_per_edge=1e-7,
        parallel_efficiency=0.5,
        calibrated_cores=2,
        loopback_bytes_per_s=1e9,
        copy_bytes_per_s=1e9,
        activation_factor=2.0,
        structure_copies=1,
        runtime_bytes=400 * 2**20,
        seconds=0.0,
    )


@pytest.fixture
def calibration():
    return hand_calibration(calibration_key("sage", 16, 2, "auto"))


@pytest.fixture
def calibration_file(tmp_path, calibration):
    path = tmp_path / "calibration.json"
    save_calibration(calibration, path)
    return path
