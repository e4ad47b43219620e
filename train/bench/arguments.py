"""Argument types shared by the benchmarks' command lines."""

import argparse


def positive_ints(text: str) -> list[int]:
  """A comma-separated list of positive integers ('1,2,4'; a trailing comma is fine)."""
  counts = [int(part) for part in text.split(',') if part]
  if not counts or min(counts) < 1:
    raise argparse.ArgumentTypeError(f'want positive integers, got {text!r}')
  return counts
