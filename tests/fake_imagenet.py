"""Fake ILSVRC2012 tars for the tests: see input_pipeline/fake_imagenet.py.

The maker lives in the input_pipeline package so that its tools (the fake-data
CLI, the input benchmark) need not import the tests; this module re-exports it
for the tests that import `tests.fake_imagenet`.
"""

# pylint: disable=wildcard-import,unused-wildcard-import
from input_pipeline.fake_imagenet import *  # noqa: F401,F403
