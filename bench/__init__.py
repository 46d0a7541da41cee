"""Benchmarks run by ``make bench``; figures are ratios measured within one run, not timings."""
