"""``husai``: the command line; each subcommand is one DVC stage, except ``compare``
(a tool for any SAEs SAELens loads)."""

from __future__ import annotations

import typer

from stages import (
    activations,
    browse,
    check_params,
    compare,
    data,
    domain,
    dynamics,
    exp,
    fourier,
    geometry,
    identifiability,
    identifiability_summary,
    paper,
    predictors,
    recovery,
    saes,
    stability,
    submit,
    sweep,
    sweep_summary,
    transformer,
)

app = typer.Typer(
    name="husai",
    help="HUSAI pipeline stages. Run them through `dvc repro`; each reads params.yaml.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

app.command("check-params")(check_params.main)
app.command("data")(data.main)
app.command("transformer")(transformer.main)
app.command("fourier")(fourier.main)
app.command("domain")(domain.main)
app.command("activations")(activations.main)
app.command("saes")(saes.main)
app.command("stability")(stability.main)
app.command("recovery")(recovery.main)
app.command("sweep")(sweep.main)
app.command("sweep-summary")(sweep_summary.main)
app.command("paper")(paper.main)
app.command("exp-summary")(exp.main)
app.command("dynamics")(dynamics.main)
app.command("geometry")(geometry.main)
app.command("predictors")(predictors.main)
app.command("identifiability")(identifiability.main)
app.command("identifiability-summary")(identifiability_summary.main)
app.command("browse")(browse.main)
app.command("compare")(compare.main)  # a tool for any SAELens SAEs, not a stage
app.command("submit")(submit.main)  # the training stages' units to SLURM at once, not a stage

if __name__ == "__main__":
    app()
