"""Federated averaging on Flower (training/federated.py): exact weighted average, a two-client two-round run
through Flower's gRPC message path, what crosses the wire, and how a client with no data is reported.

Tiny everywhere: U-Net base 8 depth 3, 32-pixel crops of 48x48 frames, 2 local steps per round."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("flwr")
torch = pytest.importorskip("torch")

from flwr.common import parameters_to_ndarrays  # noqa: E402
from flwr.server.strategy.aggregate import aggregate as flower_aggregate  # noqa: E402

from framecolor.checkpoint import load_generator, read_metadata  # noqa: E402
from training import federated as F  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TINY = dict(base_channels=8, depth=3, crop=32, short_side=48, batch=2, d_channels=8, d_layers=2, threads=1,
            progress=False, seed=3)
ROUNDS, LOCAL_STEPS = 2, 2


def write_frames(folder: Path, n: int, seed: int) -> Path:
    """n small colour PNGs (synthetic cartoons) in ``folder``."""
    import cv2

    from training.synthetic import make_frame

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        rgb = make_frame(seed + i, (48, 48))
        cv2.imwrite(str(folder / f"f{i:03d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


class Recording(F.GeneratorFedAvg):
    """The real strategy, recording every FitIns it sends and every FitRes / failure it receives."""

    sent: list = []
    received: list = []
    failed: list = []

    def configure_fit(self, server_round, parameters, client_manager):
        pairs = super().configure_fit(server_round, parameters, client_manager)
        type(self).sent.extend((server_round, ins) for _, ins in pairs)
        return pairs

    def aggregate_fit(self, server_round, results, failures):
        type(self).received.extend((server_round, res) for _, res in results)
        type(self).failed.extend(failures)
        return super().aggregate_fit(server_round, results, failures)


def recording_class():
    return type("Rec", (Recording,), {"sent": [], "received": [], "failed": []})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Two clients (frame folders of 5 and 3 frames), two rounds, simulated; wall time measured."""
    root = tmp_path_factory.mktemp("fed")
    a, b = write_frames(root / "a", 5, 0), write_frames(root / "b", 3, 100)
    specs = [str(a), f"{b}:cartoon"]
    opts = F.federated_options(specs, root / "out", ROUNDS, LOCAL_STEPS, **TINY)
    rec = recording_class()
    t0 = time.perf_counter()
    model = F.simulate(opts, strategy_cls=rec)
    return {"model": model, "out": root / "out", "rec": rec, "seconds": time.perf_counter() - t0,
            "paths": [str(a), str(b)], "specs": specs, "root": root}


# ------------------------------------------------------------------------------------------ averaging
def test_weighted_average_is_exact_on_known_tensors():
    """sum n_k w_k / sum n_k per tensor, exact, dtypes kept (integer buffers rounded)."""
    a = [np.array([[1.0, 2.0], [3.0, 4.0]], np.float32), np.array(10, np.int64)]
    b = [np.array([[5.0, 6.0], [7.0, 8.0]], np.float32), np.array(21, np.int64)]
    avg = F.weighted_average([(a, 1), (b, 3)])
    np.testing.assert_array_equal(avg[0], np.array([[4.0, 5.0], [6.0, 7.0]], np.float32))
    assert avg[0].dtype == np.float32
    assert avg[1].dtype == np.int64 and int(avg[1]) == 18  # (10 + 63) / 4 = 18.25 -> 18
    # Same as Flower's own FedAvg aggregation on the float tensors.
    np.testing.assert_allclose(avg[0], flower_aggregate([([a[0]], 1), ([b[0]], 3)])[0], rtol=0, atol=1e-6)
    # Equal counts: the plain mean; one client: itself.
    np.testing.assert_array_equal(F.weighted_average([(a, 2), (b, 2)])[0], (a[0] + b[0]) / 2)
    np.testing.assert_array_equal(F.weighted_average([(a, 7)])[0], a[0])


def test_weighted_average_refuses_mismatched_clients_and_bad_counts():
    """Shapes/dtypes that differ between clients, or a non-positive count, are errors."""
    a = [np.zeros((2, 2), np.float32)]
    with pytest.raises(ValueError):
        F.weighted_average([(a, 1), ([np.zeros((2, 3), np.float32)], 1)])
    with pytest.raises(ValueError):
        F.weighted_average([(a, 1), ([np.zeros((2, 2), np.float64)], 1)])
    with pytest.raises(ValueError):
        F.weighted_average([(a, 0)])


def test_generator_arrays_round_trip_and_refuse_wrong_shapes():
    """Weights leave and re-enter a generator unchanged; a wrong shape is refused."""
    from framecolor.models import build_generator
    from framecolor.models.unet import UNetConfig

    torch.manual_seed(0)
    g1, g2 = build_generator(UNetConfig(base_channels=8, depth=3)), build_generator(UNetConfig(base_channels=8, depth=3))
    arrays = F.generator_arrays(g1)
    F.load_generator_arrays(g2, arrays)
    for (k, t1), t2 in zip(g1.state_dict().items(), g2.state_dict().values()):
        assert torch.equal(t1, t2), k
    bad = list(arrays)
    bad[0] = np.zeros((1, 1), bad[0].dtype)
    with pytest.raises(F.FederatedError):
        F.load_generator_arrays(g2, bad)


# ------------------------------------------------------------------------------------------ a run
def test_two_clients_two_rounds_finish_fast_and_checkpoint_each_round(run):
    """The simulated run finishes well under two minutes and leaves loadable global checkpoints per round."""
    print(f"two clients x two rounds: {run['seconds']:.1f} s")
    assert run["seconds"] < 60
    out = run["out"]
    for r in range(1, ROUNDS + 1):
        assert (out / f"round_{r:03d}.safetensors").is_file()
    assert run["model"] == out / "model.safetensors"
    g = load_generator(run["model"])  # what `framecolor run --model` does
    with torch.no_grad():
        y = g(torch.zeros(1, 1, 32, 32))
    assert y.shape == (1, 2, 32, 32)
    _, info = read_metadata(run["model"])
    assert info["federated"] and info["round"] == ROUNDS and sorted(info["sample_counts"]) == [3, 5]
    for name in ("client-1", "client-2"):  # each client logged its own losses locally
        rows = (out / "clients" / name / "losses.csv").read_text().splitlines()
        assert len(rows) == 1 + ROUNDS * LOCAL_STEPS


def test_global_model_is_the_sample_weighted_average_of_the_clients_replies(run):
    """The saved round-2 model equals weighted_average of the round-2 replies with counts 5 and 3."""
    replies = [(parameters_to_ndarrays(res.parameters), res.num_examples)
               for rnd, res in run["rec"].received if rnd == ROUNDS]
    assert sorted(n for _, n in replies) == [3, 5]
    expected = F.weighted_average(replies)
    g = load_generator(run["out"] / f"round_{ROUNDS:03d}.safetensors")
    for e, t in zip(expected, g.state_dict().values()):
        np.testing.assert_array_equal(t.numpy(), e)
    # Round 2 started from round 1's average: that is what the server sent both clients.
    sent2 = [parameters_to_ndarrays(ins.parameters) for rnd, ins in run["rec"].sent if rnd == ROUNDS]
    g1 = load_generator(run["out"] / "round_001.safetensors")
    for arrays in sent2:
        for a, t in zip(arrays, g1.state_dict().values()):
            np.testing.assert_array_equal(a, t.numpy())


def test_same_seed_gives_the_same_global_model(run):
    """Clients take turns and seed their training per round, so a rerun reproduces the model exactly."""
    again = F.simulate(F.federated_options(run["specs"], run["root"] / "again", ROUNDS, LOCAL_STEPS, **TINY))
    for t1, t2 in zip(load_generator(run["model"]).state_dict().values(), load_generator(again).state_dict().values()):
        assert torch.equal(t1, t2)


def test_messages_carry_only_generator_tensors_and_counts(run):
    """FitIns/FitRes hold exactly the generator's state tensors (shapes, dtypes, bytes) plus integer counts
    and the architecture: no image-sized arrays, no paths, no strings beyond the model config."""
    g = load_generator(run["model"])
    ref = [(tuple(t.shape), t.numpy().dtype) for t in g.state_dict().values()]
    state_bytes = sum(t.numpy().nbytes for t in g.state_dict().values())

    def check_parameters(p):
        arrays = parameters_to_ndarrays(p)
        assert [(a.shape, a.dtype) for a in arrays] == ref
        # npy serialisation adds one small header per tensor and nothing else
        extra = sum(len(b) for b in p.tensors) - state_bytes
        assert 0 <= extra <= 128 * len(arrays)

    sent, received = run["rec"].sent, run["rec"].received
    assert len(sent) == len(received) == 2 * ROUNDS
    for rnd, ins in sent:
        check_parameters(ins.parameters)
        assert set(ins.config) == {"round", "local_steps", "warmup_steps", "model"}
        assert ins.config["round"] == rnd and ins.config["local_steps"] == LOCAL_STEPS
        assert all(type(ins.config[k]) is int for k in ("round", "local_steps", "warmup_steps"))
        assert json.loads(ins.config["model"])["arch"] == "unet"
        for path in run["paths"]:
            assert path not in ins.config["model"]
    for _, res in received:
        check_parameters(res.parameters)
        assert type(res.num_examples) is int and res.num_examples in (5, 3)
        assert res.metrics == {"local_steps": LOCAL_STEPS}
        assert res.status.message == ""


# ------------------------------------------------------------------------------------------ failures
@pytest.mark.parametrize("kind", ["missing", "empty"])
def test_client_without_data_fails_and_server_names_it(tmp_path, kind):
    """A client whose data folder is missing or empty makes the run stop with an error naming that client;
    what reached the server names the client but not its path."""
    good = write_frames(tmp_path / "good", 2, 0)
    bad = tmp_path / "bad"
    if kind == "empty":
        bad.mkdir()
    opts = F.federated_options([str(good), str(bad)], tmp_path / "out", 2, 1, **TINY)
    rec = recording_class()
    t0 = time.perf_counter()
    with pytest.raises(F.FederatedError) as info:
        F.simulate(opts, strategy_cls=rec)
    assert time.perf_counter() - t0 < 60
    message = str(info.value)
    assert "\n" not in message
    assert "'client-2'" in message and str(bad) in message and "client-1 (" not in message
    assert "does not exist" in message if kind == "missing" else "no image files" in message
    wire = [res.status.message for _, res in rec.failed]
    assert len(wire) == 1 and "client-2" in wire[0] and str(bad) not in wire[0]
    assert not (tmp_path / "out" / "round_001.safetensors").exists()


def test_cli_federated_failure_is_one_line_and_non_zero(tmp_path):
    """`framecolor train --federated` with an empty client folder exits 2 with one error line naming it."""
    from click.testing import CliRunner

    from framecolor.cli import cli

    good = write_frames(tmp_path / "good", 2, 0)
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["-q", "train", "--federated", "--client", str(good), "--client", f"{empty}:cartoon", "--rounds", "1",
            "--local-steps", "1", "--out", str(tmp_path / "out"), "--base-channels", "8", "--depth", "3",
            "--crop", "32", "--short-side", "48", "--batch", "2", "--d-channels", "8", "--threads", "1"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("framecolor: error:")]
    assert len(errors) == 1 and "client-2" in errors[0] and str(empty) in errors[0]


def test_cli_refuses_options_that_do_not_apply():
    """--steps with --federated, or --client without it, are refused with a clear message."""
    from click.testing import CliRunner

    from framecolor.cli import cli

    r = CliRunner().invoke(cli, ["train", "--federated", "--client", "synthetic", "--steps", "5", "--out", "x"])
    assert r.exit_code == 2 and "--steps" in r.output and "--federated" in r.output
    r = CliRunner().invoke(cli, ["train", "--client", "synthetic", "--out", "x"])
    assert r.exit_code == 2 and "need --federated" in r.output


# ------------------------------------------------------------------------------------------ processes
def test_deployment_server_and_client_processes_on_loopback(tmp_path):
    """The server and two client processes of training/federated_deploy.py run one round over 127.0.0.1
    and the server writes the global checkpoint."""
    a, b = write_frames(tmp_path / "a", 3, 0), write_frames(tmp_path / "b", 3, 50)
    address = f"127.0.0.1:{F.free_port()}"
    py = [sys.executable, "-m", "training.federated_deploy", "-q"]
    server = subprocess.Popen(py + ["server", "--address", address, "--clients", "2", "--rounds", "1",
                                    "--local-steps", "1", "--out", str(tmp_path / "global"), "--base-channels", "8",
                                    "--depth", "3", "--short-side", "48", "--connect-timeout", "60"],
                              cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    common = ["--batch", "2", "--crop", "32", "--short-side", "48", "--d-channels", "8", "--threads", "1",
              "--max-wait", "60"]
    clients = [subprocess.Popen(py + ["client", "--server", address, "--name", n, "--data", str(d)] + common,
                                cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for n, d in (("studio-a", a), ("studio-b", b))]
    try:
        out, _ = server.communicate(timeout=100)
        assert server.returncode == 0, out
        for c in clients:
            c_out, _ = c.communicate(timeout=30)
            assert c.returncode == 0, c_out
    finally:
        for p in (server, *clients):
            if p.poll() is None:
                p.kill()
    assert (tmp_path / "global" / "round_001.safetensors").is_file()
    load_generator(tmp_path / "global" / "model.safetensors")


# ------------------------------------------------------------------------------------------ the experiment script
def test_experiment_split_is_4_4_2_by_time_with_gaps():
    """benchmarks/federated_experiment.py: client 1, client 2 and test are consecutive, in proportion 4:4:2
    of the frames left after the gaps, and separated by exactly ``gap`` unused frames."""
    from benchmarks import federated_experiment as X

    assert X.parse_split("4:4:2") == (4.0, 4.0, 2.0)
    for bad in ("4:4", "4:4:0", "4:x:2", "4:4:2:1", "-1:4:2"):
        with pytest.raises(ValueError):
            X.parse_split(bad)
    s = X.split_frames(132, (4, 4, 2), gap=10)
    assert [(r.start, r.stop) for r in s.values()] == [(0, 45), (55, 100), (110, 132)]
    s = X.split_frames(250, (4, 4, 2), gap=20)
    assert [(r.start, r.stop) for r in s.values()] == [(0, 84), (104, 188), (208, 250)]
    assert s["client-2"].start - s["client-1"].stop == 20 and s["test"].start - s["client-2"].stop == 20
    specs = X.data_specs("clip.mp4", "cartoon", X.split_frames(132, (4, 4, 2), gap=10))
    assert specs == {"client-1": "clip.mp4:cartoon@0:45", "client-2": "clip.mp4:cartoon@55:100",
                     "test": "clip.mp4:cartoon@110:132:1"}


def test_experiment_budget_is_the_same_total_for_every_model():
    """S steps over all parties for client-only, central and FedAvg (R x L x 2 = S); the labelled variant
    gives each client S steps (2S in total); a budget FedAvg cannot match exactly is refused."""
    from benchmarks import federated_experiment as X

    b = X.Budget(1600, 40)
    plan = b.plan()
    assert b.rounds == 20
    assert {r: plan[r]["total"] for r in ("client-1", "client-2", "central", "fedavg")} == dict.fromkeys(
        ("client-1", "client-2", "central", "fedavg"), 1600)
    assert plan["fedavg"]["per_party"] == 800 and plan["fedavg"]["rounds"] * 40 * 2 == 1600
    assert plan["fedavg-per-client"] == {"per_party": 1600, "parties": 2, "total": 3200, "rounds": 40}
    with pytest.raises(ValueError):
        X.Budget(1000, 40)  # 1000 / 80 is not a whole number of rounds
    cmds = X.train_commands(X.data_specs("c.mp4", "cartoon", X.split_frames(132, (4, 4, 2), 10)), b, 7,
                            Path("out"), ["--crop", "64"], python="py")

    def opt(cmd, name):
        return [cmd[i + 1] for i, c in enumerate(cmd) if c == name]

    assert opt(cmds["client-1"], "--steps") == ["1600"] and opt(cmds["central"], "--steps") == ["1600"]
    assert opt(cmds["central"], "--data") == ["c.mp4:cartoon@0:45", "c.mp4:cartoon@55:100"]
    assert opt(cmds["fedavg"], "--rounds") == ["20"] and opt(cmds["fedavg"], "--local-steps") == ["40"]
    assert opt(cmds["fedavg-per-client"], "--rounds") == ["40"]
    assert "--steps" not in cmds["fedavg"]
    for run, cmd in cmds.items():  # same model/training options and seed for all, each in its own folder
        assert opt(cmd, "--crop") == ["64"] and opt(cmd, "--seed") == ["7"] and opt(cmd, "--out") == [f"out/{run}"]


def test_experiment_goal_checks():
    """FedAvg is compared with the mean of the two client-only models and with central (15% margin)."""
    from benchmarks import federated_experiment as X

    def sc(c1, c2, fed, central):
        d = {"gray": 15.0, "client-1": c1, "client-2": c2, "fedavg": fed, "fedavg-per-client": fed,
             "central": central}
        return {k: {"ciede2000": v, "ssim": 0.9} for k, v in d.items()}

    s = X.summarise({0: sc(10.0, 12.0, 11.0, 10.0), 1: sc(10.0, 12.0, 11.6, 10.0)})
    assert s["rows"]["client-mean"]["ciede2000"] == pytest.approx(11.0)
    assert s["goals"][0]["no_worse_than_client_mean"] and s["goals"][0]["within_15pct_of_central"]
    assert not s["goals"][1]["no_worse_than_client_mean"]
    assert not s["goals"][1]["within_15pct_of_central"]  # 11.6 is 16% above 10.0
    assert s["goals"]["mean"]["vs_central"] == pytest.approx(0.13)
    table = X.markdown_table(s, X.Budget(1600, 40))
    assert "| FedAvg, 20 rounds x 40 steps x 2 clients (1600 steps in total) | 1600 | 11.00 / 11.60 | 11.30 |" in table
    assert "NOT met" in table
