"""Train one stage of a reference model on a preprocessed dataset (checkpoints, --resume, loss.csv / loss.png).

The stage's run folder is RUN_DIR/<stage>/ (so all stages of a model share one RUN_DIR, which
`toolkit generate --checkpoint RUN_DIR` reads). Several GPUs: run it under `accelerate launch`.
"""

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

EXAMPLE = (
    "Examples: toolkit train dreamhead --stage a2l --config tiny --dataset data/sample --out runs/dh  |  "
    "toolkit train dreamhead --stage a2l --config tiny --dataset data/sample --out runs/dh --resume --steps 3000  |  "
    "accelerate launch --num_processes 2 $(which toolkit) train dreamhead --stage l2i --config paper "
    "--dataset data/hdtf --out runs/dh-paper  |  "
    "toolkit train moda --stage motion --config tiny --dataset data/sample --out runs/moda"
)

def model_module(name: str):
    """The baseline package of trained model `name` (imported on use: torch and diffusers are slow to import)."""
    from talking_head.baselines import registry

    try:
        return registry.get_trained(name).load_package()
    except registry.UnknownModelError as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL") from None


def train(
    model: str = typer.Argument(..., help="Reference model (one of baselines/registry.py's trained models)."),
    stage: str = typer.Option(..., "--stage", help="Stage to train (the model's stages, in training order)."),
    config: str = typer.Option("tiny", "--config", help="Config name (tiny, paper) or a YAML file."),
    dataset: Path = typer.Option(..., "--dataset", help="Preprocessed dataset folder (toolkit preprocess --out)."),
    out: Path = typer.Option(..., "--out", help="Run folder; this stage writes RUN_DIR/<stage>/."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the newest checkpoint in the run folder."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Override training.steps."),
    set_: Optional[List[str]] = typer.Option(None, "--set", help="Override a config value: key.sub=value (repeatable)."),
    speaker: Optional[List[str]] = typer.Option(None, "--speaker", help="A stage trained per identity (MODA's "
                                                "renderer): train this speaker's, in RUN_DIR/<stage>/<speaker>/ "
                                                "(repeatable; default: the config's choice)."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda or cuda:N (default: the config's "
                                         "training.cpu: a GPU when there is one)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    from talking_head.baselines.training import TrainingError, checkpoint_dirs, train as run_training
    from talking_head.toolkit.device import check_device

    console = Console(stderr=True, soft_wrap=True)
    package = model_module(model)
    if stage not in package.STAGES:
        raise typer.BadParameter(f"{model} has no stage {stage!r}; choose one of {', '.join(package.STAGES)}",
                                 param_hint="--stage")
    if device is not None:
        try:  # before the dataset is read
            check_device(device)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--device") from None
    overrides = list(set_ or []) + ([f"training.steps={steps}"] if steps is not None else [])
    try:
        resolved = package.load_config(config, stage, overrides)
    except package.ConfigError as exc:
        raise typer.BadParameter(str(exc), param_hint="--config / --set") from None
    if not dataset.is_dir() or not (dataset / "dataset_dict.json").is_file():
        console.print(f"[red]error:[/red] {dataset}: not a preprocessed dataset (no dataset_dict.json; "
                      "make one with toolkit preprocess)")
        raise typer.Exit(1)
    try:
        runs = package.STAGES[stage].runs(resolved, dataset, list(speaker or []))
        for identity, config_of in runs:  # one model, or one per identity
            run_dir = out / stage if identity is None else out / stage / identity
            again = resume and (identity is None or bool(checkpoint_dirs(run_dir)))  # a new identity starts
            result = run_training(package.STAGES[stage], config_of, dataset, run_dir, resume=again,
                                  show_progress=not quiet, device=device)
            resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
            loss = f"{result.last_loss:.4f}" if result.last_loss is not None else "-"
            who = "" if identity is None else f" [{identity}]"
            print(f"{model} {stage}{who}: step {result.step}{resumed}, last loss {loss}; weights: "
                  f"{run_dir / 'model.safetensors'}; curve: {run_dir / 'loss.png'}")
    except (TrainingError, ValueError, FileNotFoundError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
