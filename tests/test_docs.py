"""The README and docs/: short enough, linked right, and every command they show works.

- README.md is under 300 lines and opens with a table of contents whose links
  resolve to its own headings.
- Every relative link in README.md and docs/*.md names an existing file, and a
  `file.md#anchor` (or `#anchor`) link an existing heading, slugged as GitHub does.
- Every `main.py` command line shown (in code blocks and inline code) goes
  through main.py's own flag parser and job builder (`train.cli.flags.parse_flags`,
  then `train.cli.jobs.job_from_flags`), in a process of its own: absl parses
  flags once per process. One driver process (this file, run as a script)
  imports them once and forks a child per command line, as tests/test_bad_input.py
  does; the driver never starts a JAX backend, so forking is safe. A command must
  reach the Job its flags ask for (run, study, comparison, search, staged search,
  scaling study, bench), or, where the page shows its output, print exactly the
  `error:` line shown. Nothing is trained: a Job is only built. A `--workdir` is
  moved into a temporary folder, and commands that need ImageNet get an empty temporary
  `data_dir`, where they must fail with the documented "not prepared" line.
- Command lines with placeholders (FILE, VARIANT, N, `...`) are templates, not
  commands; TEMPLATES lists each, and the test fails on one it does not know.
- Commands of other tools (`python -m MODULE`): the quick ones' --help runs, and
  must list every flag the pages pass them; the slow ones' command line is run by
  another test (RUN_ELSEWHERE names it), and each flag shown must be in the
  module's source; BY_HAND lists those checked by hand.
"""

import glob
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ['README.md', *sorted(os.path.relpath(p, REPO)
                              for p in glob.glob(os.path.join(REPO, 'docs', '*.md')))]
README_MAX_LINES = 300
DRIVER_TIMEOUT_SECONDS = 600  # A hang guard only; the driver takes seconds.

# Command lines that show a form, not a command: their placeholders do not parse.
TEMPLATES = {
    'python main.py --config=configs/FILE.py:VARIANT',
    'python main.py --config=configs/FILE.py[:VARIANT]',
    'python main.py --config=FILE.py --num_trials=N',
    '.venv/bin/python main.py --config=... --coordinator_address=host0:1234 '
    '--num_processes=N --process_id=i',
}
# The line a command that needs ImageNet prints when data_dir holds none.
NOT_PREPARED = "error: config error: dataset='imagenet2012' is not allowed; it is not prepared in "
# A command that needs ImageNet at the papers' batch sizes (16,384 and 32,768) may
# instead be refused because a step cannot fit on this host's devices, which is
# checked before the data: a line that also shows the command reached its config.
# Which key the line names (the batch, the eval batch, the batches prefetched)
# depends on the memory free at that moment.
TOO_LARGE_FOR_THIS_HOST = re.compile(
    r'error: config error: (global_batch_size|eval_batch_size|input\.prefetch_batches)='
    r'[\d,]+ is not allowed; .*needs at least .*; allowed: at most ')
# `python -m MODULE` of other tools. These start in a second or less: the test runs
# each one's --help and finds every flag the pages pass it there.
HELP_CHECKED = {'input_pipeline.prepare_imagenet', 'input_pipeline.fake_imagenet',
                'mlperf_logging.compliance_checker', 'train.bench.claim_scale'}
# These import TensorFlow or pandas (tens of seconds on 2 cores): another test runs
# their command line, and this one finds each flag in the module's source.
RUN_ELSEWHERE = {
    'train.bench.input_throughput': 'tests/test_input_benchmark.py',  # input_throughput.main
    'train.cli.schedule_figure': 'tests/test_schedule_figure.py',  # schedule_figure.main
    'mlperf_logging.compliance_checker': 'tests/test_mlperf_compliance.py',
    'input_pipeline.prepare_imagenet': 'tests/test_imagenet_prepare.py',
    'pytest': '.ci/run',  # The README's test command, verbatim.
}
# Checked by hand on the final commit of issue 14: the --help of MLPerf's package
# checker, result summarizer and RCP checker, and each flag the pages pass them
# (tests/test_mlperf_compliance.py calls the summarizer's and the RCP checker's
# functions on a study's results folder); pip's install lines need an accelerator.
BY_HAND = {'mlperf_logging.package_checker', 'mlperf_logging.result_summarizer',
           'mlperf_logging.rcp_checker', 'pip'}


def _read(page: str) -> str:
  with open(os.path.join(REPO, page)) as f:
    return f.read()


def _without_code(text: str) -> str:
  """The text with fenced code blocks and inline code blanked out."""
  text = re.sub(r'^```.*?^```', '', text, flags=re.S | re.M)
  return re.sub(r'`[^`]*`', '', text)


def _slug(heading: str) -> str:
  """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to '-'."""
  text = re.sub(r'\[([^\]]*)\]\([^)]*\)', r'\1', heading.strip().lower())
  return re.sub(r'[^\w\- ]', '', text).replace(' ', '-')


def _anchors(page: str) -> set[str]:
  anchors, seen = set(), {}
  text = re.sub(r'^```.*?^```', '', _read(page), flags=re.S | re.M)
  for heading in re.findall(r'^#{1,6} +(.+?) *#*$', text, flags=re.M):
    slug = _slug(heading)
    count = seen.get(slug, 0)
    anchors.add(slug if count == 0 else f'{slug}-{count}')
    seen[slug] = count + 1
  return anchors


def _links(page: str) -> list[str]:
  return re.findall(r'\]\(([^)\s]+)\)', _without_code(_read(page)))


def test_slugs_follow_github():
  assert _slug("The papers' experiments") == 'the-papers-experiments'
  assert _slug('1. Get the tars') == '1-get-the-tars'
  assert _slug("Checking a run's log") == 'checking-a-runs-log'
  assert _slug('Is a difference real?') == 'is-a-difference-real'
  assert _slug('The layers of train/') == 'the-layers-of-train'


def test_readme_is_short_with_a_table_of_contents():
  lines = _read('README.md').splitlines()
  assert len(lines) < README_MAX_LINES
  assert '## Contents' in lines[:20], 'no table of contents near the top'
  start = lines.index('## Contents') + 1
  end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith('## '))
  targets = re.findall(r'^- \[[^\]]+\]\((#[^)]+)\)$', '\n'.join(lines[start:end]), re.M)
  headings = [_slug(line[3:]) for line in lines[end:] if line.startswith('## ')]
  assert [t[1:] for t in targets] == headings, 'the contents do not list the sections'


def test_readme_links_every_docs_page():
  linked = {os.path.normpath(link.partition('#')[0]) for link in _links('README.md')}
  assert set(PAGES[1:]) <= linked


@pytest.mark.parametrize('page', PAGES)
def test_relative_links_resolve(page):
  broken = []
  for link in _links(page):
    if re.match(r'[a-z]+:', link):
      continue  # https:, mailto:
    path, _, anchor = link.partition('#')
    target = os.path.normpath(os.path.join(os.path.dirname(page), path)) if path else page
    if not os.path.exists(os.path.join(REPO, target)):
      broken.append(f'{link}: no file {target}')
    elif anchor and (not target.endswith('.md') or anchor not in _anchors(target)):
      broken.append(f'{link}: no heading #{anchor} in {target}')
  assert not broken, broken


# --- command lines -----------------------------------------------------------------


def _command_lines(text: str) -> list[tuple[str, str | None]]:
  """Each command line of the page, with the `error:` line shown after it, if any."""
  found = []
  for block in re.findall(r'^ *```[a-z]*\n(.*?)^ *```', text, flags=re.S | re.M):
    lines = block.replace('\\\n', ' ').splitlines()
    for i, line in enumerate(lines):
      line = line.strip()
      prompt = line.startswith('$ ')
      command = ' '.join(re.sub(r'\s+#.*$', '', line[2:] if prompt else line).split())
      shown = lines[i + 1].strip() if prompt and i + 1 < len(lines) else None
      shown = shown if shown and shown.startswith('error:') else None
      found.extend((part, shown) for part in command.split(' && '))
  for span in re.findall(r'`([^`]+)`', re.sub(r'^ *```.*?^ *```', '', text,
                                               flags=re.S | re.M)):
    found.extend((part, None) for part in ' '.join(span.split()).split(' && '))
  return found


def _main_py_args(command: str) -> list[str] | None:
  """The arguments of a `main.py` command line, or None for another command."""
  match = re.match(r'(?:(?:\.venv/bin/)?python )?main\.py( .*)?$', command)
  return shlex.split(match.group(1) or '') if match else None


def _module_command(command: str) -> tuple[str, list[str]] | None:
  match = re.match(r'(?:\.venv/bin/)?python -m ([\w.]+)( .*)?$', command)
  return (match.group(1), shlex.split(match.group(2) or '')) if match else None


def _all_commands() -> list[tuple[str, str, str | None]]:
  return [(page, command, shown) for page in PAGES
          for command, shown in _command_lines(_read(page))]


def _expected_kind(args: list[str]) -> str:
  if args[:1] in (['bench'], ['worker'], ['report'], ['profile']):
    return args[0]
  if any(a.startswith('--robustness') for a in args):
    return 'robustness'
  if not args or any(a.startswith('--compare') for a in args):
    return 'comparison'
  if any(a.startswith('--num_trials') for a in args):
    return 'search'
  if '--search' in args:
    return 'staged_search'
  if any(a.startswith('--scaling=') for a in args):
    return 'scaling'
  return 'study' if any(a.startswith('--num_seeds') for a in args) else 'run'


def _prepared(args: list[str], tmp: str) -> tuple[list[str], bool]:
  """The args with a temporary workdir and, for ImageNet, an empty data_dir."""
  needs_imagenet = any(re.search(r'configs/(mlperf_lars_32k|nesterov_[ab]|cosine_6000|lamb_resnet'
                                 r'|nesterov_search_table9|(lamb_paper|reality_check)/\w+)\.py', a)
                       for a in args) or \
      any(a == '--config.dataset=imagenet2012' for a in args)
  out = []
  for a in args:
    if a.startswith('--workdir='):
      a = '--workdir=' + os.path.join(tmp, 'runs', os.path.basename(a.partition('=')[2]))
    elif needs_imagenet and a.startswith('--config.data_dir='):
      a = '--config.data_dir=' + os.path.join(tmp, 'tfds')
    out.append(a)
  if needs_imagenet and not any(a.startswith('--config.data_dir=') for a in out):
    out.append('--config.data_dir=' + os.path.join(tmp, 'tfds'))
  if out[:1] == ['profile']:  # It reads finished studies: written without training.
    out = [_with_finished_studies(a, tmp) if a.startswith('--studies=') else a for a in out]
  if out[:1] in (['worker'], ['report']):  # They need a study: one with a plan.
    for a in out:
      if a.startswith('--workdir=') and not os.path.exists(
          os.path.join(a.partition('=')[2], 'plan.json')):
        _write_a_plan(a.partition('=')[2])
  return out, needs_imagenet


def _with_finished_studies(arg: str, tmp: str) -> str:
  """--studies=... with each directory moved under `tmp` and a finished study
  (WORKLOAD:OPTIMIZER=DIR) or a comparison of embedded_lars and
  embedded_nesterov (WORKLOAD=DIR) written there (tests/finished_studies.py)."""
  from tests import finished_studies  # pylint: disable=g-import-not-at-top
  entries = []
  for entry in arg.partition('=')[2].split(','):
    names, _, directory = entry.partition('=')
    moved = os.path.join(tmp, 'studies', directory.strip('/').replace('/', '_'))
    optimizer = names.partition(':')[2]
    if optimizer:
      finished_studies.write_study(moved, optimizer, [100, 200])
    else:
      finished_studies.write_comparison(moved, {'embedded_lars': [100, 200],
                                                'embedded_nesterov': [150, None]})
    entries.append(f'{names}={moved}')
  return '--studies=' + ','.join(entries)


def _write_a_plan(directory: str) -> None:
  """A pending one-seed study of embedded_lars.py in `directory`: worker and
  report read and check the whole plan before they start."""
  from configs import embedded_lars  # pylint: disable=g-import-not-at-top
  from train.experiments import plan as plan_lib  # pylint: disable=g-import-not-at-top
  config = embedded_lars.get_config()
  entries = [plan_lib.Entry('embedded_lars', config, directory)]
  spec = {'kind': plan_lib.PlanKind.STUDY,
          'configs': {'embedded_lars': plan_lib.config_values(config)}}
  plan_lib.write_plan(plan_lib.make_plan(plan_lib.PlanKind.STUDY, 'embedded_lars', directory,
                                         entries, 1), spec)


def _main_py_cases() -> tuple[list[dict], list[str]]:
  cases, templates, seen = [], [], set()
  for page, command, shown in _all_commands():
    args = _main_py_args(command)
    if command in TEMPLATES:
      templates.append(command)
      continue
    if args is None or tuple(args) in seen:  # `main.py` and `python main.py` are one.
      continue
    seen.add(tuple(args))
    cases.append({'page': page, 'command': command, 'args': args, 'shown': shown})
  return cases, templates


def test_every_template_is_shown():
  _, templates = _main_py_cases()
  assert sorted(set(templates)) == sorted(TEMPLATES), 'a template is no longer shown: drop it'


def test_main_py_command_lines_parse(tmp_path):
  cases, _ = _main_py_cases()
  assert len(cases) > 10, 'the pages show fewer commands than they did'
  runs = os.path.join(REPO, 'runs')
  runs_before = sorted(os.listdir(runs)) if os.path.isdir(runs) else None
  os.makedirs(tmp_path / 'tfds')
  for case in cases:
    case['argv'], case['needs_imagenet'] = _prepared(case['args'], str(tmp_path))
  spec = tmp_path / 'cases.json'
  spec.write_text(json.dumps(cases))
  start = time.monotonic()
  proc = subprocess.run([sys.executable, __file__, str(spec)], cwd=REPO, capture_output=True,
                        text=True, timeout=DRIVER_TIMEOUT_SECONDS, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
  problems = []
  for case, outcome in zip(cases, outcomes):
    where = f"{case['page']}: {case['command']}\n  -> {outcome}"
    stderr = outcome['stderr'].strip()
    if {'--help', '--helpfull'} & set(case['args']):  # absl exits 1 after its help.
      ok = outcome['status'] in (0, 1) and 'bench:' in outcome['stdout']
    elif case['shown']:
      ok = outcome['status'] == 2 and stderr == case['shown']
    elif case['needs_imagenet']:
      # A comparison names the config first: 'error: mlperf_lars_32k: config error: ...'.
      unnamed = re.sub(r'^error: [\w.]+: (?=config error)', 'error: ', stderr)
      refused = unnamed.startswith(NOT_PREPARED) or TOO_LARGE_FOR_THIS_HOST.match(unnamed)
      ok = outcome['status'] == 2 and refused and '\n' not in stderr
    else:
      ok = outcome['status'] == 0 and outcome['kind'] == _expected_kind(case['args'])
    if not ok:
      problems.append(where)
  assert not problems, '\n'.join(problems)
  assert (sorted(os.listdir(runs)) if os.path.isdir(runs) else None) == runs_before
  print(f'{len(cases)} command lines in {time.monotonic() - start:.1f} s')


def _module_commands() -> list[tuple[str, str, str, list[str]]]:
  found = []
  for page, command, _ in _all_commands():
    module_command = _module_command(command)
    if module_command is not None:
      found.append((page, command, *module_command))
  return found


def test_other_tools_are_checked():
  modules = {module for _, _, module, _ in _module_commands()}
  unchecked = modules - HELP_CHECKED - set(RUN_ELSEWHERE) - BY_HAND
  assert not unchecked, f'add these to HELP_CHECKED, RUN_ELSEWHERE or BY_HAND: {unchecked}'
  for module, where in RUN_ELSEWHERE.items():
    assert module.rpartition('.')[2] in _read(where), f'{where} does not run {module}'


def _flags(args: list[str]) -> list[str]:
  return [a.partition('=')[0] for a in args if a.startswith('--')]


@pytest.mark.parametrize('module', sorted(HELP_CHECKED))
def test_other_tools_help_lists_the_flags_shown(module):
  proc = subprocess.run([sys.executable, '-m', module, '--help'], cwd=REPO,
                        capture_output=True, text=True, timeout=120, check=False)
  assert proc.returncode == 0, proc.stderr[-2000:]
  shown = {flag for _, _, m, args in _module_commands() if m == module for flag in _flags(args)}
  missing = [flag for flag in sorted(shown) if flag not in proc.stdout]
  assert not missing, f'{module} --help lists none of {missing}'


def test_other_tools_run_elsewhere_define_the_flags_shown():
  problems = []
  for page, command, module, args in _module_commands():
    if module in RUN_ELSEWHERE and module not in HELP_CHECKED:
      source = _module_source(module)
      problems += [f'{page}: {command}: {module} defines no {flag}'
                   for flag in _flags(args) if f"'{flag}'" not in source]
  assert not problems, '\n'.join(problems)


def _module_source(module: str) -> str:
  """The source of a module (of a package: all its files), found without importing it."""
  import importlib.util  # pylint: disable=g-import-not-at-top
  spec = importlib.util.find_spec(module)
  paths = ([spec.origin] if not spec.submodule_search_locations else
           glob.glob(os.path.join(spec.submodule_search_locations[0], '**', '*.py'),
                     recursive=True))
  text = ''
  for path in paths:
    with open(path) as f:
      text += f.read()
  return text


# --- the driver: one forked child per command line ------------------------------------


def _run_case(case: dict) -> dict:
  """Forks a child that parses the case's argv and builds its Job; its outcome."""
  import runpy  # pylint: disable=g-import-not-at-top
  read_end, write_end = os.pipe()
  out_file = tempfile.TemporaryFile(mode='w+')
  err_file = tempfile.TemporaryFile(mode='w+')
  pid = os.fork()
  if pid == 0:  # The child: main.py's own parser and job builder, then exit.
    os.close(read_end)
    os.dup2(out_file.fileno(), 1)
    os.dup2(err_file.fileno(), 2)
    sys.stdout = os.fdopen(1, 'w', closefd=False)
    sys.stderr = os.fdopen(2, 'w', closefd=False)
    status, kind = 0, None
    try:
      argv = ['main.py', *case['argv']]
      if {'--help', '--helpfull'} & set(argv):
        sys.argv = argv
        runpy.run_path(os.path.join(REPO, 'main.py'), run_name='__main__')
      else:
        from train.cli import flags as cli_flags  # pylint: disable=g-import-not-at-top
        from train.cli import jobs  # pylint: disable=g-import-not-at-top
        kind = jobs.job_from_flags(cli_flags.parse_flags(argv)).kind
    except SystemExit as e:
      status = e.code if isinstance(e.code, int) else 1
    except BaseException as e:  # pylint: disable=broad-except
      print(f'{type(e).__name__}: {e}', file=sys.stderr)
      status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(write_end, json.dumps({'status': status, 'kind': kind}).encode())
    os._exit(0)  # pylint: disable=protected-access
  os.close(write_end)
  with os.fdopen(read_end) as f:
    result = f.read()
  os.waitpid(pid, 0)
  outcome = json.loads(result) if result else {'status': None, 'kind': None}
  for name, f in (('stdout', out_file), ('stderr', err_file)):
    f.seek(0)
    outcome[name] = f.read()
    f.close()
  return outcome


def _drive(spec_path: str) -> None:
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
  sys.path.insert(0, REPO)
  # Imported once here, for every child; none of them starts a JAX backend.
  from train.cli import flags as _  # noqa: F401  pylint: disable=g-import-not-at-top
  from train.cli import jobs as _  # noqa: F401,F811  pylint: disable=g-import-not-at-top
  with open(spec_path) as f:
    cases = json.load(f)
  print(json.dumps([_run_case(case) for case in cases]))


if __name__ == '__main__':
  _drive(*sys.argv[1:])
