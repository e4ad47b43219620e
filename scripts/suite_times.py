"""Writes tests/durations.json from a measured run of the whole suite.

  HARNESS_REQUIRE_SLURM=1 .venv/bin/python -m pytest --junitxml=/tmp/suite.xml
  .venv/bin/python scripts/suite_times.py /tmp/suite.xml --wall_seconds=SECONDS \
      --conditions='fresh clone through .ci/run, nothing else running'

The file holds each test file's seconds (the sum of its tests' setup, call and
teardown: its time on one xdist worker) and CPU seconds (what decides the
suite's wall time on 2 cores), the suite's wall time and test count,
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


def _file_name(case: ElementTree.Element) -> str:
  # classname is 'tests.test_x' or 'tests.test_x.TestClass'.
  module = case.get('classname', '').split('.')
  return f'{module[1]}.py' if len(module) > 1 else module[0]


def _longest_first(seconds: dict[str, float]) -> dict[str, float]:
  ordered = sorted(seconds.items(), key=lambda item: -item[1])
  return {name: round(s, 1) for name, s in ordered}


def file_seconds(junit_xml: str) -> tuple[dict[str, float], dict[str, float], int]:
  """Each test file's wall seconds and CPU seconds, longest first, and the number of tests.

  The CPU seconds are the `cpu_seconds` properties tests/conftest.py records (the
  test's process and its waited-for children; a Slurm job's work is not in them).
  """
  seconds: dict[str, float] = collections.defaultdict(float)
  cpu: dict[str, float] = collections.defaultdict(float)
  count = 0
  for case in ElementTree.parse(junit_xml).getroot().iter('testcase'):
    name = _file_name(case)
    seconds[name] += float(case.get('time', 0.0))
    for prop in case.iter('property'):
      if prop.get('name') == 'cpu_seconds':
        cpu[name] += float(prop.get('value', 0.0))
    count += 1
  return _longest_first(seconds), _longest_first(cpu), count


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('junit_xml')
  parser.add_argument('--wall_seconds', type=float, required=True,
                      help="pytest's own 'passed in' time")
  parser.add_argument('--conditions', required=True,
                      help='where it ran: a fresh clone, the machine, its load')
  args = parser.parse_args()
  seconds, cpu, count = file_seconds(args.junit_xml)
  with open(OUTPUT, 'w') as f:
    json.dump({'date': datetime.date.today().isoformat(), 'tests': count,
               'wall_seconds': args.wall_seconds, 'conditions': args.conditions,
               'file_seconds': seconds, 'file_cpu_seconds': cpu}, f, indent=1)
    f.write('\n')
  print(f'{OUTPUT}: {count} tests, {len(seconds)} files, longest {next(iter(seconds))}; '
        f'CPU {sum(cpu.values()):.0f} s in all, most {next(iter(cpu), None)}')


if __name__ == '__main__':
  main()
