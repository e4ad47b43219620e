"""Throughput benchmarks: synthetic steps, the input pipeline alone, and the
whole training step.
"""
