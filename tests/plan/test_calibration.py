"""Calibration files: written atomically, read back equal, reused without measuring, refused with the file and key named."""
import dataclasses
import json

import pytest

from gnndist.plan import CalibrationError, calibration_key, load_calibration, load_or_measure, save_calibration
from gnndist.plan import calibration as calibration_module


def test_round_trip_is_atomic_and_equal(tmp_path, calibration):
    path = tmp_path / "sub" / "calibration.json"
    save_calibration(calibration, path)
    assert [p.name for p in path.parent.iterdir()] == ["calibration.json"]  # no temp file left beside it
    assert load_calibration(path, calibration.key) == calibration


def test_an_existing_file_is_reused_not_measured(calibration_file, calibration, monkeypatch):
    monkeypatch.setattr(calibration_module, "measure_with_worker_heap", lambda key: pytest.fail("measured although the file exists"))
    lines = []
    assert load_or_measure(calibration_file, calibration.key, log=lines.append) == calibration
    assert lines == [f"calibration: {calibration_file} (reused)"]


def test_a_missing_file_is_measured_and_written(tmp_path, calibration, monkeypatch):
    monkeypatch.setattr(calibration_module, "measure_with_worker_heap", lambda key: calibration)
    path = tmp_path / "new.json"
    load_or_measure(path, calibration.key, log=lambda line: None)
    assert load_calibration(path) == calibration


def test_a_calibration_is_measured_in_a_child_with_a_workers_heap(tmp_path, calibration, monkeypatch):
    """The rates depend on how glibc's heap keeps freed tensors, set when a process starts: the measuring child
    gets the workers' settings in its environment, this process's environment is left alone, and a failed child
    is an error that says so."""
    import os
    import subprocess

    from gnndist.memory import worker_malloc_env

    seen = {}

    def run(argv, env, timeout):  # stands in for the child: records what it got, writes what measure() would
        seen.update(env=env, argv=argv)
        save_calibration(dataclasses.replace(calibration, key=json.loads(argv[-2])), argv[-1])
        return subprocess.CompletedProcess(argv, 0)

    monkeypatch.setattr(calibration_module.subprocess, "run", run)
    before = dict(os.environ)
    path = tmp_path / "c.json"
    load_or_measure(path, calibration.key, log=lambda line: None)
    assert load_calibration(path) == calibration
    assert worker_malloc_env(release=False).items() <= seen["env"].items() and dict(os.environ) == before
    assert json.loads(seen["argv"][-2]) == json.loads(json.dumps(calibration.key))

    # workers that release freed memory (cluster.release_memory) run at other rates: their own key and heap
    released = {**calibration.key, "release_memory": True}
    with pytest.raises(CalibrationError, match=r"key 'key.release_memory' is False but this plan needs True"):
        load_or_measure(path, released, log=lambda line: None)
    load_or_measure(tmp_path / "released.json", released, log=lambda line: None)
    assert worker_malloc_env(release=True).items() <= seen["env"].items() and json.loads(seen["argv"][-2])["release_memory"] is True

    monkeypatch.setattr(calibration_module.subprocess, "run", lambda argv, env, timeout: subprocess.CompletedProcess(argv, 3))
    with pytest.raises(RuntimeError, match="measuring process failed .exit 3"):
        load_or_measure(tmp_path / "d.json", calibration.key, log=lambda line: None)
    assert not (tmp_path / "d.json").exists()


def test_corrupted_or_mismatched_files_name_the_file_and_key(calibration_file, calibration):
    text = calibration_file.read_text()
    calibration_file.write_text(text[: len(text) // 2])
    with pytest.raises(CalibrationError, match=f"{calibration_file}: not valid JSON"):
        load_calibration(calibration_file)
    values = json.loads(text)
    del values["train_factor"]
    calibration_file.write_text(json.dumps(values))
    with pytest.raises(CalibrationError, match=f"{calibration_file}: key 'train_factor' is missing"):
        load_calibration(calibration_file)
    values = json.loads(text)
    values["matmul_flops_per_s"] = "fast"
    calibration_file.write_text(json.dumps(values))
    with pytest.raises(CalibrationError, match="key 'matmul_flops_per_s' must be a positive number"):
        load_calibration(calibration_file)
    calibration_file.write_text(text)
    with pytest.raises(CalibrationError, match=f"{calibration_file}: key 'key.model' is 'sage' but this plan needs 'gcn'"):
        load_calibration(calibration_file, calibration_key("gcn", 16, 2, "auto"))
    calibration_file.write_text(json.dumps({**values, "format": "other"}))
    with pytest.raises(CalibrationError, match="key 'format'"):
        load_calibration(calibration_file)


@pytest.mark.slow
def test_measuring_takes_under_a_minute_and_gives_positive_rates(tmp_path):
    path = tmp_path / "calibration.json"
    measured = load_or_measure(path, calibration_key("sage", 32, 2, "auto"), log=lambda line: None)
    assert measured.seconds < 60 and measured.matmul_flops_per_s > 0 and measured.train_factor > 1 and measured.runtime_bytes > 0
    assert load_calibration(path) == measured
