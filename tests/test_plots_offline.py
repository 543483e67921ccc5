"""`dvc plots show` without network: the repository's HTML template (paper/plots-template.html,
written by scripts/plots-template) inlines the charting libraries DVC's own page loads from
a CDN. The page DVC makes from it on the tiny pipeline is checked in tests/test_pipeline.py.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "paper" / "plots-template.html"
SCRIPT = ROOT / "scripts" / "plots-template"

EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["']?(?:https?:)?//""", re.I
)


def dvc_cdn_versions() -> dict[str, str]:
    """The libraries and versions DVC's default page loads from the CDN."""
    from dvc_render.vega import VegaRenderer

    found = dict(re.findall(r"/npm/([a-z-]+)@([0-9][0-9.]*)", VegaRenderer.SCRIPTS))
    assert set(found) == {"vega", "vega-lite", "vega-embed"}, VegaRenderer.SCRIPTS
    return found


def external_refs(html: str) -> list[str]:
    return EXTERNAL.findall(html)


def test_the_template_inlines_the_libraries_dvc_would_load() -> None:
    page = TEMPLATE.read_text(encoding="utf-8")
    for name, version in dvc_cdn_versions().items():
        assert f"/*! {name} {version} (npm {name}@{version}," in page
    assert page.count("{plot_divs}") == 1
    assert "{scripts}" not in page  # DVC's CDN tags go there: left out on purpose
    assert '<meta charset="utf-8">' in page  # the inlined code is not ASCII
    assert external_refs(page) == []
    assert "sourceMappingURL" not in page
    # each library's BSD licence travels with it
    assert page.count("Redistribution and use in source and binary forms") == 3


def test_dvc_config_points_at_the_template() -> None:
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        rel = repo.config["plots"]["html_template"]
        assert Path(repo.dvc_dir, rel).resolve() == TEMPLATE.resolve()


def test_a_cdn_script_tag_counts_as_external() -> None:
    from dvc_render.vega import VegaRenderer

    assert len(external_refs(VegaRenderer.SCRIPTS)) == 3


def test_the_template_is_what_the_script_writes() -> None:
    """Fetches the three npm tarballs (about 6 MB); skipped where npm cannot reach the registry."""
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=300
    )
    if proc.returncode == 3 or shutil.which("npm") is None:
        pytest.skip(f"npm unavailable: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
