"""A robustness comparison's summary: robustness.json and report.md, from its studies.

`main.py --config=FILE --robustness=KEY=VALUE,... --num_seeds=N` plans a study of
the config as tuned (the entry `base`) and of each workload variant
(train/experiments/workloads.py), each in DIR/<workload>, as a comparison plans
its configs: the same seeds everywhere, interleaved, resumable, run inline or by
workers (study.py, worker.py). Once runs have finished, study.write_report
calls `write_robustness` with each workload's study, base first.
"""

import os
from collections.abc import Sequence

from configs import algoperf_variants
from train.common import files
from train.experiments import drops as drops_lib
from train.experiments import plan as plan_lib
from train.experiments import workloads
from train.experiments.reports import robustness as robustness_report
from train.mlperf import rules

SUMMARY_FILE = 'robustness.json'


def workload_targets(plan: plan_lib.Plan) -> list[dict]:
  """Each workload's change from the base and its targets: the runs' own, MLPerf's
  (for MLPerf's model only) and AlgoPerf's published ImageNet targets (for the
  model options of AlgoPerf's base or one of its variants)."""
  base = plan.entries[0].config
  targets = []
  for entry in plan.entries:
    algoperf = workloads.algoperf_workload(entry.config)
    published = None
    if algoperf is not None:
      validation, test = algoperf_variants.ALGOPERF_TARGETS[algoperf]
      published = {'workload': algoperf_variants.ALGOPERF_WORKLOADS[algoperf],
                   'validation_target': validation, 'test_target': test}
    targets.append({'name': entry.name, 'change': workloads.changes(base, entry.config),
                    'target_accuracy': entry.config.target_accuracy,
                    'mlperf_target': rules.MLPERF_TARGET_ACCURACY if algoperf == '' else None,
                    'algoperf': published})
  return targets


def write_robustness(plan: plan_lib.Plan, studies: Sequence[dict], wall_seconds: float,
                     unfinished: Sequence[dict]) -> list[dict]:
  """Writes DIR/robustness.json and DIR/report.md; returns the variants' drops.

  Args:
    plan: the robustness comparison's plan, its base entry first.
    studies: each entry's study.json content, in the plan's order.
    wall_seconds: the comparison's wall time.
    unfinished: the planned runs without a result, of every workload.
  """
  base, variants = studies[0], list(studies[1:])
  drops = drops_lib.variant_drops(base, variants)
  targets = workload_targets(plan)
  files.write_json(os.path.join(plan.directory, SUMMARY_FILE), {
      'name': plan.name,
      'base': base['name'],
      'variants': [v['name'] for v in variants],
      'num_seeds': plan.num_seeds,
      'overrides': plan.overrides,
      'wall_seconds': wall_seconds,
      'workloads': targets,
      'studies': [{k: v for k, v in s.items() if k != 'runs'} for s in studies],
      'drops': drops,
  })
  robustness_report.write_robustness_report(
      plan.directory, plan.name, [(s['name'], s, s['runs']) for s in studies], drops,
      targets, wall_seconds, overrides=plan.overrides, unfinished=unfinished)
  return drops


def drop_table(directory: str, studies: Sequence[dict]) -> str:
  """The drop table of the robustness comparison in `directory`, for the console:
  each workload's study (base first) and robustness.json's drops."""
  drops = plan_lib.read_json(os.path.join(directory, SUMMARY_FILE),
                             f'write it again with python main.py report --workdir={directory}')
  return robustness_report.drop_table([(s['name'], s, s['runs']) for s in studies],
                                      drops['drops'])
