"""The benchmarks' summary statistics."""

from __future__ import annotations

import pytest

from qa.stats import median, percentile


def test_nearest_rank_percentile_is_always_a_measured_value():
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0.95) == 4.0
    assert percentile(values, 0.5) == 2.0
    assert percentile(values, 0.25) == 1.0
    assert percentile(values, 1.0) == 4.0


def test_p95_of_a_hundred_values_is_the_95th_smallest():
    assert percentile(list(range(1, 101)), 0.95) == 95


def test_percentile_refuses_no_values_and_fractions_outside_0_to_1():
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], -0.1)
    with pytest.raises(ValueError, match="fraction"):
        percentile([1.0], 95)


def test_median_of_an_even_count_is_the_mean_of_the_middle_two():
    assert median([1.0, 2.0, 3.0, 10.0]) == 2.5


def test_percentile_is_nearest_rank():
    values = [5.0, 1.0, 4.0, 2.0, 3.0]
    assert percentile(values, 0.5) == 3.0
    assert percentile(values, 0.95) == 5.0
    assert percentile(values, 0.0) == 1.0
