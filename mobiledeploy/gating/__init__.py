"""The CI latency gate, apart from the CLI that parses its flags and prints its results.

- `wallclock`: the judgement of timed samples (ratio intervals normalised by a reference model);
- `exact`: the judgement of exact Arm instruction counts, and the instruction baseline file;
- `baseline`, `baseline_refs`: the wall-clock baseline file, and where the model files a baseline names may lie;
- `status`: the one set of status words of every gate; `reports`: JUnit, Markdown and the report files;
- `request`: what a gate is asked (`GateRequest`) and how it shows what it does (`GateOutput`);
- `plan`, `stored`: the wall-clock gate on a stored baseline of this machine class (plan, measure, judge, record);
- `exact_run`: the exact gate on emulated cores; `against`: the A/B gate (`--against REV|DIR`);
- `run`: which of them a request asks for, and the reports on every way it ends.
"""
