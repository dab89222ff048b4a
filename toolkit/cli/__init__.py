"""The `toolkit` command. Each sub-command lives in its own module here and is registered below."""

import typer

from talking_head.toolkit import quiet
from talking_head.toolkit.cli import audit, evaluate, generate, leaderboard, preprocess, reproduce, sample, train, weights

app = typer.Typer(
    name="toolkit",
    help="Datasets, reference models and reference-exact metrics for audio-driven talking-head synthesis.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    verbose: bool = typer.Option(
        False, "--verbose", envvar=quiet.VERBOSE_ENV, show_envvar=False,
        help="Show third-party output too: MediaPipe / TensorFlow Lite log lines and Hugging Face progress bars "
             "(hidden by default; the toolkit's own progress and messages are always shown). "
             "TOOLKIT_VERBOSE=1 does the same.",
    ),
) -> None:
    quiet.configure(verbose)


app.command("sample", help=sample.__doc__, epilog=sample.EXAMPLE)(sample.sample)
app.command("preprocess", help=preprocess.__doc__, epilog=preprocess.EXAMPLE)(preprocess.preprocess)
app.command("evaluate", help=evaluate.__doc__, epilog=evaluate.EXAMPLE)(evaluate.evaluate)
app.command("audit", help=audit.__doc__, epilog=audit.EXAMPLE)(audit.audit)
app.command("train", help=train.__doc__, epilog=train.EXAMPLE)(train.train)
app.command("generate", help=generate.__doc__, epilog=generate.EXAMPLE)(generate.generate)
app.command("leaderboard", help=leaderboard.__doc__, epilog=leaderboard.EXAMPLE)(leaderboard.leaderboard)
app.command("reproduce", help=reproduce.__doc__, epilog=reproduce.EXAMPLE)(reproduce.reproduce)
app.add_typer(weights.app, name="weights")


def main() -> None:
    app()
