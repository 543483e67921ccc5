"""Stage ``browse@<domain>``: an offline HTML latent browser per SAE configuration.

For every configuration of params ``saes.<domain>`` it loads the checkpoints of all
seeds (``models/saes/<domain>/<config>/seed<seed>``), encodes the domain's data
(``data/domains/<domain>.safetensors``) and writes ``paper/browse/<domain>/<config>.html``
(:func:`husai.browse.browse_data`, :func:`husai.browse.render_html`: every live latent's
map, firing rate, plane and phase where the data have planes, and its best matches in
every other seed; dead latents listed, not drawn) plus ``index.html`` linking them.
Each page is self-contained (no network, open it from disk) and byte-identical on
rerun. The shared rule uses params ``analysis.shared_threshold``.

Not part of stage ``paper``, which reads ``metrics/`` only.
"""

from __future__ import annotations

from pathlib import Path

import typer

from stages._artifacts import domain_path, load_domain
from stages._common import PARAMS_OPTION, console, load_params, setup, stage, write_dir


@stage("browse")
def main(
    domain: str = typer.Option("modular", help="Domain: a key of params saes."),
    params: Path = PARAMS_OPTION,
    data: Path | None = typer.Option(
        None, "--data", help="The domain's data [data/domains/<domain>.safetensors]."
    ),
    saes: Path | None = typer.Option(
        None, help="Checkpoints of stage saes [models/saes/<domain>]."
    ),
    out: Path | None = typer.Option(None, help="Folder of HTML pages [paper/browse/<domain>]."),
) -> None:
    """Offline HTML browser of every live latent of every `saes.<domain>` configuration."""
    from husai.browse import browse_data, page_summary, render_html, render_index
    from husai.errors import HusaiError
    from stages._analysis import load_config_saes

    prm = load_params(params)
    configs = prm.sae_configs(domain)
    if not configs:
        raise HusaiError(f"browse: params.yaml lists no SAE configuration for domain {domain!r}")
    setup(prm)
    data = domain_path(domain) if data is None else data
    saes = Path("models/saes") / domain if saes is None else saes
    out = Path("paper/browse") / domain if out is None else out
    transformer = prm.is_transformer_domain(domain)
    dom = load_domain(data, domain, transformer)
    grid_p = int(dom.meta["p"]) if transformer else None
    files: dict[str, bytes] = {}
    pages = []
    for name, hp in configs.items():
        sae = load_config_saes(saes / name, name, hp, dom.d_in)
        dec, enc = sae.decoder_atoms(), sae.encoder_atoms()
        page = browse_data(
            domain=domain,
            config=name,
            architecture=sae.config.architecture,
            seeds=sae.seeds,
            decoders=[dec[i] for i in range(sae.n_seeds)],
            encoders=[enc[i] for i in range(sae.n_seeds)],
            codes=[sae.select(i).encode(dom.x)[0] for i in range(sae.n_seeds)],
            x=dom.x,
            truth=dom.truth,
            grid_p=grid_p,
            threshold=prm.analysis.shared_threshold,
        )
        files[f"{name}.html"] = render_html(page).encode()
        pages.append((name, f"{name}.html", page_summary(page)))
        console.print(
            f"browse {domain}/{name}: {sum(page['n_live'])} live latents drawn, "
            f"{sum(len(d) for d in page['dead'])} dead listed, "
            f"{len(files[f'{name}.html']) / 1e6:.2f} MB"
        )
    files["index.html"] = render_index(domain, pages).encode()
    write_dir(out, files)
    console.print(f"browse {domain}: {len(pages)} pages -> {out}")
