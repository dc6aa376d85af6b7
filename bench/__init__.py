"""Benchmarks: each prints medians and ratios against baselines measured in the same process."""
import services  # noqa: F401 - quiets eventlet's import warning before nameko is imported
