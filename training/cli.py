"""``framecolor train``: declared here and attached to the ``framecolor`` group lazily, by import path
("training.cli:train"), so the product never imports the training code unless asked.

Errors the user can act on are raised as :class:`framecolor.errors.UserError`; the ``framecolor`` group turns
them into one line and an exit code.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("train")
@click.option("--data", "data", multiple=True, metavar="SPEC",
              help="Training source, repeatable: PATH[:cartoon|live-action][@A:B:STEP][*WEIGHT] (video, frame "
                   "folder or image; frames A..B-1 every STEP, or STEP=changes), or synthetic[:domain], "
                   "skimage[:domain].")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: step_*.safetensors, state_*.pt, grid_*.png, model.safetensors, losses.csv.")
@click.option("--arch", type=click.Choice(["unet", "resnet34-unet"]), default="unet", show_default=True)
@click.option("--base-channels", type=click.IntRange(4, 256), default=32, show_default=True, help="U-Net width.")
@click.option("--depth", type=click.IntRange(2, 8), default=5, show_default=True, help="U-Net stride-2 blocks.")
@click.option("--width", type=click.IntRange(4, 128), default=32, show_default=True,
              help="ResNet-34 U-Net encoder width (64 = published ResNet-34).")
@click.option("--steps", type=click.IntRange(1), default=2000, show_default=True, help="Total optimisation steps.")
@click.option("--warmup-steps", type=click.IntRange(0), default=None,
              help="L1-only steps before the adversarial phase. [default: 20% of --steps]")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--crop", type=click.IntRange(16), default=128, show_default=True, help="Random crop side (pixels).")
@click.option("--short-side", type=click.IntRange(16), default=256, show_default=True,
              help="Frames are resized to this short side when cached (the inference render size).")
@click.option("--lr", type=float, default=2e-4, show_default=True, help="Adam learning rate (G and D).")
@click.option("--beta1", type=float, default=0.5, show_default=True)
@click.option("--beta2", type=float, default=0.999, show_default=True)
@click.option("--l1-weight", type=float, default=100.0, show_default=True)
@click.option("--gan-loss", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True)
@click.option("--gan-weight", type=float, default=1.0, show_default=True)
@click.option("--ciede-weight", type=float, default=0.0, show_default=True,
              help="Weight of the differentiable CIEDE2000 loss (in dE00 units).")
@click.option("--d-channels", type=click.IntRange(4), default=64, show_default=True, help="PatchGAN width.")
@click.option("--d-layers", type=click.IntRange(1, 6), default=3, show_default=True,
              help="PatchGAN strided layers (3: 70x70 patches).")
@click.option("--spectral-norm", is_flag=True, help="Spectral normalisation in the discriminator.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(1), default=500, show_default=True)
@click.option("--resume", is_flag=True, help="Continue from the newest state_*.pt in --out.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="CPU threads for torch.")
@click.option("--lineart", type=click.Choice(["draft", "refine"]), default=None,
              help="Train a line-art colouring stage (pairs built on the fly from the colour --data: XDoG / "
                   "high-pass line art): 'draft' (line art -> Lab) or 'refine' (line art + draft + hints -> Lab; "
                   "drafts simulated from the truth, see training/lineart_pairs.py); use with run --input-kind "
                   "lineart --draft-model/--refine-model.")
@click.option("--draft-model", type=click.Path(dir_okay=True, path_type=Path), default=None,
              help="With --lineart refine: a trained draft model, whose real drafts then replace the simulated ones "
                   "for a share of the samples (--real-draft-share).")
@click.option("--real-draft-share", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="With --draft-model: share of samples drafted by that model (the rest: simulated mistakes).")
@click.option("--hue-jitter", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Probability of rotating a training sample's target hue by a random angle (colour augmentation: "
                   "teaches that colours the grey level does not determine stay neutral); see --hue-jitter-domain.")
@click.option("--hue-jitter-domain", type=click.Choice(["live-action", "cartoon", "all"]), default="live-action",
              show_default=True, help="Which --data domain --hue-jitter applies to.")
@click.option("--init", "init", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Start from this generator checkpoint's weights (its architecture must match the options).")
@click.option("--rebalance", type=click.FloatRange(0, 1, min_open=True), default=None, metavar="LAMBDA",
              help="Colour rebalancing (Zhang et al. 2016): weight L1 and CIEDE2000 per pixel by the rarity of its "
                   "colour. LAMBDA is the share of the uniform distribution in the mix (0.5 in the paper): "
                   "smaller weighs rare colours more, 1 weighs every colour alike. Default: off.")
@click.option("--federated", is_flag=True,
              help="Federated averaging (FedAvg on Flower) over the --client data sets, simulated on this machine: "
                   "only generator weights and sample counts travel; see docs/federated.md (extra: federated).")
@click.option("--client", "clients", multiple=True, metavar="SPEC",
              help="With --federated: one client's data, repeatable (same SPEC form as --data).")
@click.option("--rounds", type=click.IntRange(1), default=10, show_default=True, help="With --federated: rounds.")
@click.option("--local-steps", type=click.IntRange(1), default=50, show_default=True,
              help="With --federated: optimisation steps each client runs per round.")
@click.pass_context
def train(ctx, data, out, arch, base_channels, depth, width, steps, warmup_steps, batch, crop, short_side, lr,
          beta1, beta2, l1_weight, gan_loss, gan_weight, ciede_weight, d_channels, d_layers, spectral_norm, seed,
          checkpoint_every, resume, device, threads, lineart, draft_model, real_draft_share, hue_jitter,
          hue_jitter_domain, init, rebalance, federated, clients, rounds, local_steps):
    """Train a generator (L1 warm-up, then conditional GAN against a PatchGAN) and write checkpoints to OUT."""
    from framecolor.errors import UserError

    from .train import TrainOptions, train as run_training

    quiet = bool((ctx.obj or {}).get("quiet")) if isinstance(ctx.obj, dict) else False
    if federated and lineart:
        raise UserError("--lineart does not combine with --federated")
    if federated:
        given = [f"--{n.replace('_', '-')}" for n in ("data", "steps", "resume", "checkpoint_every")
                 if ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT]
        if given:
            raise UserError(f"{', '.join(given)}: not used with --federated (use --client, --rounds, --local-steps)")
        if not clients:
            raise UserError("--federated needs at least one --client SPEC")
        data, steps = clients, rounds * local_steps
    elif clients or any(ctx.get_parameter_source(n) is not click.core.ParameterSource.DEFAULT
                        for n in ("rounds", "local_steps")):
        raise UserError("--client, --rounds and --local-steps need --federated")
    elif not data:
        raise UserError("missing option --data (or --federated with --client)")
    options = TrainOptions(
        data=data, out=out, arch=arch, base_channels=base_channels, depth=depth, width=width, steps=steps,
        warmup_steps=warmup_steps, batch=batch, crop=crop, short_side=short_side, lr=lr, betas=(beta1, beta2),
        l1_weight=l1_weight, gan_loss=gan_loss, gan_weight=gan_weight, ciede_weight=ciede_weight,
        d_channels=d_channels, d_layers=d_layers, spectral_norm=spectral_norm, seed=seed,
        checkpoint_every=checkpoint_every, resume=resume, device=device, threads=threads, progress=not quiet,
        lineart=lineart, draft_model=str(draft_model) if draft_model is not None else None,
        real_draft_share=real_draft_share, hue_jitter=hue_jitter,
        hue_jitter_domain=None if hue_jitter_domain == "all" else hue_jitter_domain,
        init=str(init) if init is not None else None, rebalance=rebalance,
    )
    if federated:
        from .federated import FederatedOptions, simulate

        path = simulate(FederatedOptions(clients=clients, rounds=rounds, local_steps=local_steps, train=options))
    else:
        path = run_training(options)
    click.echo(f"model: {path}")
