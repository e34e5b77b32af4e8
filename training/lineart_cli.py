"""``framecolor lineart-pairs`` (and ``framecolor sample --lineart``): (line art, colour) training pairs from a
video or frame folder. Declared here and attached to the ``framecolor`` group lazily, by import path
("training.lineart_cli:lineart_pairs"), so the product never imports the training code unless asked."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("lineart-pairs")
@click.argument("input", type=click.Path(path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(path_type=Path),
              help="Folder for line/ and color/, PNG pairs named by frame number.")
@click.option("--every", default=60, show_default=True, type=int, help="Keep every Nth frame.")
@click.option("--method", default="xdog", show_default=True, type=click.Choice(["xdog", "highpass"]),
              help="Line extraction: XDoG or the high-pass method (training/lineart.py).")
@click.option("--overwrite", is_flag=True, help="Write into an existing non-empty folder.")
def lineart_pairs(input, output, every, method, overwrite):
    """Write (line art, colour) training pairs: every Nth frame in colour, and its line art."""
    from .lineart import write_pairs

    n = write_pairs(input, output, every=every, method=method, overwrite=overwrite)
    click.echo(f"{n} pairs written to {output}")
