"""Stage ``stability@<domain>``: do the SAEs learn the same atoms across seeds?

For every configuration of params ``saes.<domain>`` it loads the checkpoints of all seeds
(``models/saes/<domain>/<config>/seed<seed>``) and runs :func:`husai.analysis.stability_summary`
(SCIENCE.md sections 4-5), with the conventions of params ``analysis``. Everything is
checked and computed before ``metrics/stability/<domain>.json`` is written.

``metrics/stability/<domain>.json``: :data:`husai.records.StabilityMetrics`, one
:class:`husai.records.StabilitySummary` per configuration (statistics over the
n(n-1)/2 seed pairs are :class:`husai.records.Stat` records with a 95% percentile
bootstrap CI resampling seeds; trained / baseline ratios are
:class:`husai.records.Ratio` records).
"""

from __future__ import annotations

from pathlib import Path

import typer

from husai.records import StabilityMetrics
from stages._artifacts import domain_path, load_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_json
from stages._progress import progress


@stage("stability")
def main(
    domain: str = typer.Option("modular", help="Domain: a key of params saes."),
    params: Path = PARAMS_OPTION,
    data: Path | None = typer.Option(
        None, "--data", help="Training data [data/domains/<domain>.safetensors]."
    ),
    saes: Path | None = typer.Option(
        None, help="Checkpoints of stage saes [models/saes/<domain>]."
    ),
    out: Path | None = typer.Option(None, help="Metrics JSON [metrics/stability/<domain>.json]."),
) -> None:
    """Stability across seeds of every `saes.<domain>` configuration, beside random baselines."""
    from husai.analysis import stability_summary
    from husai.errors import HusaiError
    from husai.sae import SAEConfig, init_saes
    from stages._analysis import analysis_options, load_config_saes, subspace_basis

    prm = load_params(params)
    configs = prm.sae_configs(domain)
    if not configs:
        raise HusaiError(f"stability: params.yaml lists no SAE configuration for domain {domain!r}")
    setup(prm)
    data = domain_path(domain) if data is None else data
    saes = Path("models/saes") / domain if saes is None else saes
    out = Path("metrics/stability") / f"{domain}.json" if out is None else out
    dom = load_domain(data, domain, prm.is_transformer_domain(domain))
    d_in = dom.d_in
    options = analysis_options(prm)
    basis = subspace_basis(dom.x, options)
    loaded = {name: load_config_saes(saes / name, name, hp, d_in) for name, hp in configs.items()}
    result = {}
    with progress() as bar:
        task = bar.add_task(f"stability {domain}: configurations", total=len(loaded))
        for name, sae in loaded.items():
            bar.update(task, description=f"stability {domain}: {name}")
            console.print(f"stability: {name} ({sae.n_seeds} seeds, d_sae {sae.config.d_sae})")
            untrained = init_saes(SAEConfig.from_hyperparams(configs[name], d_in), sae.seeds)
            summary = stability_summary(sae, options, untrained, basis=basis)
            summary.update(
                control_summary(
                    sae, dom, options, saes / name, prm.is_transformer_domain(domain), basis
                )
            )
            result[name] = summary
            bar.advance(task)
    write_json(out, result, StabilityMetrics)
    for name, st in result.items():
        r = st["pwmcc_ratio_to_random"]
        ci = "" if r["ci"] is None else f" [{r['ci'][0]:.2f}, {r['ci'][1]:.2f}]"
        console.print(
            f"  {name}: PWMCC {st['pwmcc']['mean']:.3f} vs random "
            f"{st['random_pwmcc']['mean']:.3f}, ratio {r['ratio']:.2f}{ci}"
            + (
                ""
                if "subspace_random_pwmcc" not in st
                else f"; random in the {st['subspace_rank']}-dim data subspace "
                f"{st['subspace_random_pwmcc']['mean']:.3f}"
            )
        )
        live = st["live"]
        console.print(
            f"    live: {live['n_live']['mean']:.0f} latents ({live['distinct_live']['mean']:.0f} "
            f"distinct), PWMCC {live['live_pwmcc']['mean']:.3f} vs "
            + ", ".join(
                f"{k} {live[f'{k}_live_pwmcc']['mean']:.3f}"
                for k in ("isotropic", "subspace", "data")
                if live.get(f"{k}_live_pwmcc")
            )
        )
        gt = st.get("ground_truth")
        if gt is not None and gt["kind"] == "features":
            console.print(
                f"    ground truth: MCC {gt['mcc']['mean']:.3f}, recovered "
                f"{gt['recovered_fraction']['mean']:.3f}; SAELens MCC "
                f"{st['saelens_eval']['mcc']['mean']:.3f} (|ours - SAELens| <= "
                f"{st['saelens_eval']['max_mcc_difference']:.1e}), F1 "
                f"{st['saelens_eval']['f1']['mean']:.3f}"
            )
        elif gt is not None:
            console.print(
                f"    ground truth: {gt['in_plane_fraction']['mean']:.3f} of live atoms in one "
                f"plane, planes covered {gt['planes_covered']['mean']:.3f}"
            )
        nr = st.get("neurons")
        if nr is not None:
            console.print(
                f"    neurons: alignment {nr['alignment']['mean']:.3f}, aligned "
                f"{nr['aligned_fraction']['mean']:.3f} (random in subspace "
                + (
                    "n/a"
                    if nr["subspace_aligned_fraction"] is None
                    else f"{nr['subspace_aligned_fraction']['mean']:.3f}"
                )
                + f"), {nr['neurons_found']['mean']:.0f} neurons found, shared "
                + (
                    "n/a"
                    if nr["shared_neurons"]["mean"] is None
                    else f"{nr['shared_neurons']['mean']:.3f}"
                )
            )
        pl = st.get("planes")
        if pl is not None:

            def f(key: str, pl: dict = pl) -> str:
                node = pl.get(key)
                mean = None if node is None else node["mean"]
                return "n/a" if mean is None else f"{mean:.3f}"

            console.print(
                f"    planes: coverage {f('coverage')} (random in subspace "
                f"{f('subspace_coverage')}), agreement {f('plane_agreement')} "
                f"({f('subspace_plane_agreement')}), partition AMI {f('partition_ami')} "
                f"({f('subspace_partition_ami')}), arc latents {f('arc_fraction')}; rotation "
                f"null: live PWMCC {f('rotation_live_pwmcc')}, shared "
                f"{f('rotation_live_shared_fraction')}"
            )
    console.print(f"stability {domain}: {len(result)} configurations -> {out}")


def control_summary(sae, dom, options, folder: Path, transformer: bool = False, basis=None) -> dict:
    """Live-latent stability with count-matched baselines, and on a control domain the
    ground-truth recovery; on the synthetic domain also SAELens's own evaluation of the
    saved checkpoints (``folder/seed<seed>``) and its largest MCC difference from ours."""
    from husai.baselines import principal_basis
    from husai.groundtruth import (
        live_stability,
        sae_live_masks,
        saelens_synthetic_eval,
        truth_summary,
    )
    from husai.stats import value_stats

    # the stage's data-subspace basis (the 99% span when analysis.subspace_variance is null)
    plane_basis = principal_basis(dom.x, 0.99) if basis is None else basis

    lives = sae_live_masks(sae, dom.x)
    dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
    boot = {"n_boot": options.n_boot, "boot_seed": options.boot_seed}
    out: dict = {
        "live": live_stability(
            [dec[i] for i in range(sae.n_seeds)],
            [enc[i] for i in range(sae.n_seeds)],
            lives,
            dom.x,
            sae.seeds,
            threshold=options.shared_threshold,
            hungarian=options.hungarian,
            subspace_variance=options.subspace_variance,
            **boot,
        )
    }
    if transformer:  # the model's own basis: neurons at mlp.hook_post
        from husai.groundtruth import neuron_alignment

        out["neurons"] = neuron_alignment(
            [dec[i] for i in range(sae.n_seeds)],
            lives,
            sae.seeds,
            plane_basis,
            **boot,
        )
    truth = truth_summary([dec[i] for i in range(sae.n_seeds)], lives, dom.truth, sae.seeds, **boot)
    if truth is None:
        return out
    out["ground_truth"] = truth
    if "planes" in dom.truth and "angles" in dom.truth:
        from husai.planes import plane_stability

        out["planes"] = plane_stability(
            [dec[i] for i in range(sae.n_seeds)],
            lives,
            [sae.select(i).encode(dom.x)[0] for i in range(sae.n_seeds)],
            dom.x,
            dom.truth,
            sae.seeds,
            plane_basis,
            encoders=[enc[i] for i in range(sae.n_seeds)],
            threshold=options.shared_threshold,
            hungarian=options.hungarian,
            **boot,
        )
    if truth["kind"] == "features":
        from sae_lens import SAE

        evals = {
            str(seed): saelens_synthetic_eval(
                SAE.load_from_disk(str(folder / f"seed{seed}")),
                dom.truth,
                n_samples=int(dom.x.shape[0]),
                seed=int(seed),
            )
            for seed in sae.seeds
        }
        stats = {"n_boot": options.n_boot, "seed": options.boot_seed}
        out["saelens_eval"] = {
            key: value_stats([e[key] for e in evals.values()], **stats).to_dict()
            for key in ("mcc", "uniqueness", "f1", "precision", "recall")
        } | {
            "max_mcc_difference": max(
                abs(e["mcc"] - truth["per_seed"][s]["mcc_all_atoms"]) for s, e in evals.items()
            ),
            "per_seed": evals,
        }
    return out
