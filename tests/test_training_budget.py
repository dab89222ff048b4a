"""CPU budget of the acceptance trainings: every stage of both reference models, trained with its tiny config
on the preprocessed sample, costs at most TRAIN_CPU_SECONDS of CPU.

The trainings are the session's tiny runs (tests/conftest.py), shared with the acceptance tests of each
stage; here only the CPU seconds they recorded are checked, so a slow machine fails this one test instead
of erroring every test that uses a trained model. Run alone, it trains every stage first.
"""

from __future__ import annotations

TRAIN_CPU_SECONDS = 180.0  # the budget for one stage's acceptance training, on one torch thread
STAGES = [("dreamhead", "a2l"), ("dreamhead", "l2i"), ("moda", "motion"), ("moda", "faco"), ("moda", "renderer")]


def test_each_tiny_training_stays_within_its_cpu_budget(tiny_runs) -> None:
    cpu = {f"{model} {stage}": tiny_runs.stage(model, stage)[2] for model, stage in STAGES}
    over = {name: round(seconds) for name, seconds in cpu.items() if not seconds < TRAIN_CPU_SECONDS}
    assert not over, f"CPU seconds over the {TRAIN_CPU_SECONDS:.0f} s budget: {over} (all stages: {cpu})"
    assert all(seconds > 0 for seconds in cpu.values()), cpu  # the clock really measured each training
