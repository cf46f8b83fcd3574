"""The benchmarks' one timing helper: warm-up runs are not timed, every timed run is, the summary is exact."""
from __future__ import annotations

import time

import pytest

from gnndist.benchmarks.timing import TimingStats, median_seconds, run_timed, time_call


def test_time_call_runs_warmup_untimed_then_times_every_repeat():
    calls = []
    times = time_call(lambda: (calls.append(1), time.sleep(0.01)), "cpu", repeats=3, warmup=2)
    assert len(calls) == 5 and len(times) == 3
    assert all(0.01 <= t < 1.0 for t in times)
    assert 0.01 <= median_seconds(lambda: time.sleep(0.01), repeats=3) < 1.0


def test_timing_stats_are_the_median_and_inclusive_quartiles():
    stats = TimingStats.of([3.0, 1.0, 2.0, 4.0])
    assert (stats.median, stats.p25, stats.p75, stats.minimum, stats.runs) == (2.5, 1.75, 3.25, 1.0, 4)
    assert TimingStats.of([0.5]) == TimingStats(0.5, 0.5, 0.5, 0.5, 1)
    with pytest.raises(ValueError, match="at least one timed run"):
        TimingStats.of([])


def test_run_timed_returns_the_result_wall_and_cpu_seconds():
    result, seconds, cpu_seconds = run_timed(lambda: (time.sleep(0.02), 7)[1], "cpu")
    assert result == 7 and 0.02 <= seconds < 1.0 and 0.0 <= cpu_seconds < seconds
