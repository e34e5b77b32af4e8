"""Federated training as separate processes: one Flower server, one client process per studio.

    python -m training.federated_deploy server --address 127.0.0.1:8080 --clients 2 --rounds 10 \\
        --local-steps 50 --out runs/fedavg
    python -m training.federated_deploy client --server 127.0.0.1:8080 --name studio-a --data /studio-a/frames
    python -m training.federated_deploy client --server 127.0.0.1:8080 --name studio-b --data /studio-b/ep01.mkv

The server owns the model (architecture, initial weights, checkpoints ``round_NNN.safetensors`` and
``model.safetensors`` in ``--out``) and the schedule (rounds, local steps, warm-up); each client owns its
data, its discriminator and its training settings, and writes its losses to its own ``--out``.  Only
generator weights and counts travel (see :mod:`training.federated`).  Everything ends by itself: the server
after the last round (or at the first client failure, which it names), the clients when the server
disconnects them or cannot be reached for ``--max-wait`` seconds.  ``training/run_federated_loopback.sh``
shows a whole run on 127.0.0.1.
"""

from __future__ import annotations

import logging
import sys
import zlib
from pathlib import Path

import click

from framecolor.errors import UserError

log = logging.getLogger("framecolor")


class _Group(click.Group):
    """UserError -> one line on stderr and its exit code (as the ``framecolor`` command does)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UserError as exc:
            click.echo(f"framecolor federated: error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("framecolor federated: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--quiet", "-q", is_flag=True, help="Warnings and errors only.")
def main(quiet):
    """Federated averaging (FedAvg, McMahan et al. 2017) on Flower: server and studio clients."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("framecolor: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.WARNING if quiet else logging.INFO)


@main.command("server")
@click.option("--address", default="127.0.0.1:8080", show_default=True,
              help="HOST:PORT to listen on (gRPC, no TLS: keep it on loopback or a private network).")
@click.option("--clients", "num_clients", type=click.IntRange(1), required=True,
              help="Number of clients; every round waits for all of them.")
@click.option("--rounds", type=click.IntRange(1), default=10, show_default=True)
@click.option("--local-steps", type=click.IntRange(1), default=50, show_default=True,
              help="Optimisation steps each client runs per round.")
@click.option("--warmup-steps", type=click.IntRange(0), default=None,
              help="L1-only steps (counted per client over the whole run). [default: 20% of rounds x local steps]")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Global checkpoints: round_NNN.safetensors, model.safetensors, rounds.csv.")
@click.option("--arch", type=click.Choice(["unet", "resnet34-unet"]), default="unet", show_default=True)
@click.option("--base-channels", type=click.IntRange(4, 256), default=32, show_default=True)
@click.option("--depth", type=click.IntRange(2, 8), default=5, show_default=True)
@click.option("--width", type=click.IntRange(4, 128), default=32, show_default=True)
@click.option("--short-side", type=click.IntRange(16), default=256, show_default=True,
              help="Render size stored in the model config.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the initial weights.")
@click.option("--connect-timeout", type=click.FloatRange(1), default=120.0, show_default=True,
              help="Seconds to wait for all clients before giving up.")
@click.option("--round-timeout", type=click.FloatRange(1), default=None, help="Seconds a round may take.")
def server(address, num_clients, rounds, local_steps, warmup_steps, out, arch, base_channels, depth, width,
           short_side, seed, connect_timeout, round_timeout):
    """Run the Flower server: send the global generator, average the clients' replies, checkpoint."""
    import torch

    from framecolor.models import build_generator

    from .federated import FederatedError, GeneratorFedAvg, serve
    from .train import TrainOptions

    t = TrainOptions(data=["synthetic"], out=out, arch=arch, base_channels=base_channels, depth=depth, width=width,
                     short_side=short_side, steps=rounds * local_steps, warmup_steps=warmup_steps, seed=seed)
    torch.manual_seed(seed)
    generator = build_generator(t.generator_config())
    strategy = GeneratorFedAvg(generator, out, num_clients=num_clients, rounds=rounds, local_steps=local_steps,
                               warmup_steps=t.warmup, info={"arch": arch, "seed": seed, "deployment": True},
                               connect_timeout=connect_timeout)
    log.info("server: listening on %s for %d clients, %d rounds x %d local steps", address, num_clients, rounds,
             local_steps)
    try:
        serve(strategy, address, rounds, round_timeout)
    except FederatedError as exc:
        raise FederatedError(f"server: federated training stopped: {exc}") from None
    click.echo(f"model: {out / 'model.safetensors'}")


@main.command("client")
@click.option("--server", "server_address", default="127.0.0.1:8080", show_default=True, help="Server HOST:PORT.")
@click.option("--name", required=True, help="This client's name, the only thing about it the server is told.")
@click.option("--data", "data", multiple=True, required=True, metavar="SPEC",
              help="This studio's training data, repeatable (same SPEC form as `framecolor train --data`).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for this client's losses.csv (default: none written).")
@click.option("--batch", type=click.IntRange(1), default=8, show_default=True)
@click.option("--crop", type=click.IntRange(16), default=128, show_default=True)
@click.option("--short-side", type=click.IntRange(16), default=256, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--l1-weight", type=float, default=100.0, show_default=True)
@click.option("--gan-loss", type=click.Choice(["bce", "lsgan"]), default="bce", show_default=True)
@click.option("--gan-weight", type=float, default=1.0, show_default=True)
@click.option("--d-channels", type=click.IntRange(4), default=64, show_default=True)
@click.option("--d-layers", type=click.IntRange(1, 6), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of this client's sampling and dropout.")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None)
@click.option("--max-wait", type=click.FloatRange(1), default=60.0, show_default=True,
              help="Give up after this many seconds without reaching the server.")
def client(server_address, name, data, out, batch, crop, short_side, lr, l1_weight, gan_loss, gan_weight,
           d_channels, d_layers, seed, device, threads, max_wait):
    """Run one studio's client: train the global generator locally each round on DATA, send back weights."""
    import torch

    from .federated import GeneratorClient, run_client
    from .train import TrainOptions

    if threads:
        torch.set_num_threads(threads)
    t = TrainOptions(data=data, out=out or Path("."), batch=batch, crop=crop, short_side=short_side, lr=lr,
                     l1_weight=l1_weight, gan_loss=gan_loss, gan_weight=gan_weight, d_channels=d_channels,
                     d_layers=d_layers, seed=seed, device=device, steps=1)
    # The name seeds this client's sampling apart from other clients that kept the default --seed.
    c = GeneratorClient(name, t, index=zlib.crc32(name.encode()), write_log=out is not None)
    run_client(c, server_address, max_wait_time=max_wait)
    if c.error is not None:
        raise UserError(f"client {name!r}: {c.error}")
    if c.rounds_done == 0:
        raise UserError(f"client {name!r}: trained no round (server unreachable at {server_address}?)")
    log.info("client %s: %d rounds done", name, c.rounds_done)


if __name__ == "__main__":
    main()
