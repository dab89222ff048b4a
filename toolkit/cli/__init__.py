"""The `toolkit` command. Each sub-command lives in its own module here and is registered below."""

import typer

from toolkit.cli import evaluate, preprocess, sample, weights

app = typer.Typer(
    name="toolkit",
    help="Datasets, reference models and reference-exact metrics for audio-driven talking-head synthesis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("sample", help=sample.__doc__, epilog=sample.EXAMPLE)(sample.sample)
app.command("preprocess", help=preprocess.__doc__, epilog=preprocess.EXAMPLE)(preprocess.preprocess)
app.command("evaluate", help=evaluate.__doc__, epilog=evaluate.EXAMPLE)(evaluate.evaluate)
app.add_typer(weights.app, name="weights")


def main() -> None:
    app()
