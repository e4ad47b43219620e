"""Writes tests/durations.json from a measured run of the whole suite.

  HARNESS_REQUIRE_SLURM=1 .venv/bin/python -m pytest --junitxml=/tmp/suite.xml
  .venv/bin/python scripts/suite_times.py /tmp/suite.xml --wall_seconds=SECONDS \
      --conditions='fresh clone through .ci/run, nothing else running'

The file holds each test file's seconds (the sum of its tests' setup, call and
teardown: its time on one xdist worker), the suite's wall time and test count,
the date and the conditions. tests/conftest.py hands the files to the xdist
workers longest first in that order, and docs/performance.md cites the figure;
no other place states the suite's time.
"""

import argparse
import collections
import datetime
import json
import os
import xml.etree.ElementTree as ElementTree

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO, 'tests', 'durations.json')


def file_seconds(junit_xml: str) -> tuple[dict[str, float], int]:
  """Each test file's seconds, longest first, and the number of tests."""
  seconds: dict[str, float] = collections.defaultdict(float)
  count = 0
  for case in ElementTree.parse(junit_xml).getroot().iter('testcase'):
    # classname is 'tests.test_x' or 'tests.test_x.TestClass'.
    module = case.get('classname', '').split('.')
    name = f'{module[1]}.py' if len(module) > 1 else module[0]
    seconds[name] += float(case.get('time', 0.0))
    count += 1
  ordered = dict(sorted(seconds.items(), key=lambda item: -item[1]))
  return {name: round(s, 1) for name, s in ordered.items()}, count


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('junit_xml')
  parser.add_argument('--wall_seconds', type=float, required=True,
                      help="pytest's own 'passed in' time")
  parser.add_argument('--conditions', required=True,
                      help='where it ran: a fresh clone, the machine, its load')
  args = parser.parse_args()
  seconds, count = file_seconds(args.junit_xml)
  with open(OUTPUT, 'w') as f:
    json.dump({'date': datetime.date.today().isoformat(), 'tests': count,
               'wall_seconds': args.wall_seconds, 'conditions': args.conditions,
               'file_seconds': seconds}, f, indent=1)
    f.write('\n')
  print(f'{OUTPUT}: {count} tests, {len(seconds)} files, longest {next(iter(seconds))}')


if __name__ == '__main__':
  main()
