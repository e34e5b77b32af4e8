"""Federated averaging of the generator on Flower: studios train one model together without sharing a frame.

The algorithm is FedAvg (McMahan et al., "Communication-Efficient Learning of Deep Networks from
Decentralized Data", AISTATS 2017): every round the server sends the global generator's weights to the
clients; each client trains them for ``local_steps`` steps on its own data with the ordinary training loop
(:func:`training.train.train_steps`: L1 warm-up, then conditional GAN against its own PatchGAN) and sends
the weights back with its sample count; the server's new global model is the average of the clients'
weights, weighted by sample count.

What stays on a client: its frames, its discriminator, its optimizer states (Adam moments of G and D
persist across rounds), its data sampling RNG, its loss log.  What crosses the wire: the generator's state
tensors (``state_dict`` order: weights and BatchNorm buffers) and, from the client, its integer sample and
step counts; from the server, the round number, the step counts and the generator architecture (the JSON
of its config dataclass: no paths, no data).  A client that cannot train answers with a failure status
naming itself (its name, never its path); the server then stops the run and reports that client.

Transport is Flower's (``flwr``, extra ``federated``; pinned to :data:`FLOWER_REQUIREMENT`) gRPC link:
:func:`serve` runs a Flower server (``Server`` + ``SimpleClientManager`` on the gRPC-bidi fleet API, as
``flwr.server.start_server`` does, but without taking over the process's signal handlers so that it can
run inside tests and the ``framecolor`` CLI) and :func:`run_client` runs ``flwr.client.start_client``.
:func:`simulate` puts N clients on one machine, each in its own thread talking to the server through the
real message path on 127.0.0.1; ``training/federated_deploy.py`` runs the server and each client as
separate processes.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

# Flower reports anonymous usage events over the network unless told not to; studios' machines are offline.
os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")

import numpy as np
import torch

from framecolor.checkpoint import save_generator
from framecolor.errors import UserError

from .data import PairDataset
from .discriminator import PatchGAN
from .train import TrainOptions, make_optimizers, resolve_device, train_steps

try:
    import flwr
    from flwr.client import Client
    from flwr.common import (Code, FitIns, FitRes, GetParametersIns, GetParametersRes, Parameters, Status,
                             ndarrays_to_parameters, parameters_to_ndarrays)
    from flwr.server.strategy import FedAvg
except ImportError as _exc:  # the optional extra is missing
    raise UserError(f"federated training needs Flower: pip install 'framecolor[federated]' ({_exc})") from None

FLOWER_REQUIREMENT = "flwr==1.41.0"
log = logging.getLogger("framecolor")
CONNECT_TIMEOUT = 120.0  # seconds the server waits for all clients to connect before giving up
CLIENT_LOG_FIELDS = ("round", "step", "phase", "l1", "g_adv", "d_loss", "ciede", "seconds")
ROUND_LOG_FIELDS = ("round", "clients", "samples", "seconds", "checkpoint")


class FederatedError(UserError):
    """A federated run that cannot go on: a client failed, or not all clients connected."""


# ------------------------------------------------------------------------------------------ weights
def generator_arrays(model) -> list[np.ndarray]:
    """The generator's state tensors (``state_dict`` order), as the numpy arrays that go on the wire."""
    return [t.detach().cpu().numpy().copy() for t in model.state_dict().values()]


def load_generator_arrays(model, arrays: Sequence[np.ndarray]) -> None:
    """Load arrays from the wire into ``model``; refuses any count, shape or dtype that does not match."""
    state = model.state_dict()
    if len(arrays) != len(state):
        raise FederatedError(f"received {len(arrays)} tensors, the generator has {len(state)}")
    new = {}
    for (name, t), a in zip(state.items(), arrays):
        expected = t.detach().cpu().numpy()
        if a.shape != expected.shape or a.dtype != expected.dtype:
            raise FederatedError(f"tensor {name}: received {a.dtype}{list(a.shape)}, "
                                 f"the generator has {expected.dtype}{list(expected.shape)}")
        new[name] = torch.from_numpy(np.array(a, copy=True))
    model.load_state_dict(new)


def weighted_average(results: Sequence[tuple[Sequence[np.ndarray], int]]) -> list[np.ndarray]:
    """FedAvg's aggregation: ``sum_k n_k w_k / sum_k n_k`` per tensor (McMahan et al. 2017, Algorithm 1).

    ``results`` holds (tensors of one client, its sample count n_k).  Sums are taken in float64 and cast
    back to each tensor's dtype (integer buffers such as BatchNorm's ``num_batches_tracked`` are rounded), so
    the average has exactly the clients' shapes and dtypes.
    """
    if not results:
        raise ValueError("nothing to average")
    counts = [int(n) for _, n in results]
    if any(n <= 0 for n in counts):
        raise ValueError(f"sample counts must be positive, got {counts}")
    first = list(results[0][0])
    for tensors, _ in results[1:]:
        if len(tensors) != len(first) or any(a.shape != b.shape or a.dtype != b.dtype
                                             for a, b in zip(tensors, first)):
            raise ValueError("clients sent tensors of different shapes or dtypes")
    total = float(sum(counts))
    out = []
    for i, ref in enumerate(first):
        acc = np.zeros(ref.shape, np.float64)
        for (tensors, _), n in zip(results, counts):
            acc += np.asarray(tensors[i], np.float64) * n
        acc /= total
        if np.issubdtype(ref.dtype, np.integer) or ref.dtype == np.bool_:
            acc = np.rint(acc)
        out.append(acc.astype(ref.dtype))
    return out


def _model_config_json(model) -> str:
    from framecolor.models import config_to_dict

    return json.dumps(config_to_dict(model.config), sort_keys=True)


def _build_from_json(text: str):
    from framecolor.models import build_generator, config_from_dict

    try:
        return build_generator(config_from_dict(json.loads(text)))
    except (ValueError, TypeError) as exc:
        raise FederatedError(f"the server sent an unusable model config ({exc})") from None


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


# ------------------------------------------------------------------------------------------ client
class GeneratorClient(Client):
    """One studio: trains the global generator locally on its own frames each round (FedAvg's ClientUpdate).

    ``options`` gives the client's data (``options.data``) and training settings (batch, crop, learning
    rate, losses, discriminator size, seed); ``options.out`` receives the client's ``losses.csv``.  The
    model architecture, the round number, ``local_steps`` and the warm-up length come from the server.
    Data are loaded when the client is made; if that fails the client still connects and answers every
    round with a failure naming itself, so the server can report which client is broken.

    ``lock``: clients that share one process (the simulation) take turns to train, which keeps each
    client's training deterministic (its torch seed is set per round) and the CPU uncontended.
    """

    def __init__(self, name: str, options: TrainOptions, index: int = 0, lock: threading.Lock | None = None,
                 write_log: bool = True, log_errors: bool = True):
        self.name = name
        self.options = options
        self.index = index
        self.lock = lock if lock is not None else contextlib.nullcontext()
        self.error: UserError | None = None
        self.data: PairDataset | None = None
        try:
            self.data = options.pair_dataset()
        except UserError as exc:
            self.error = exc
            if log_errors:  # the simulation folds the details into its own error line instead
                log.error("%s: cannot load its training data: %s", name, exc)
        self.rng = np.random.default_rng([options.seed, 7, index])
        self.device = resolve_device(options.device)
        self.generator = self.discriminator = self.optimizers = None
        self.rounds_done = 0
        self._log = None
        if write_log and self.error is None:
            options.out.mkdir(parents=True, exist_ok=True)
            self._log_path = options.out / "losses.csv"
            with open(self._log_path, "w", newline="") as f:
                csv.writer(f).writerow(CLIENT_LOG_FIELDS)
        else:
            self._log_path = None

    def sample_count(self, local_steps: int) -> int:
        """n_k of FedAvg: the number of frames this client holds (an unlimited synthetic source counts the
        samples it draws in one round, ``local_steps * batch``)."""
        assert self.data is not None
        n = sum(len(s) for s in self.data.sources if not s.unlimited)
        if any(s.unlimited for s in self.data.sources):
            n += local_steps * self.options.batch
        return n

    def _failure(self, reason: str) -> FitRes:
        # Only the client's name and a category travel; the details (paths) stay in the client's own log.
        return FitRes(status=Status(code=Code.FIT_NOT_IMPLEMENTED, message=f"client {self.name!r}: {reason}"),
                      parameters=Parameters(tensors=[], tensor_type=""), num_examples=0, metrics={})

    def get_parameters(self, ins: GetParametersIns) -> GetParametersRes:
        # The server owns the initial model; a client never volunteers its weights outside a round.
        return GetParametersRes(status=Status(code=Code.GET_PARAMETERS_NOT_IMPLEMENTED,
                                              message="the server initialises the global model"),
                                parameters=Parameters(tensors=[], tensor_type=""))

    def fit(self, ins: FitIns) -> FitRes:
        if self.error is not None:
            return self._failure("cannot load its training data (missing or empty data folder?)")
        try:
            with self.lock:
                return self._fit(ins)
        except FederatedError as exc:
            self.error = exc
            log.error("%s: %s", self.name, exc)
            return self._failure(str(exc))
        except Exception as exc:  # a crash must reach the server as this client's failure, not hang the run
            self.error = UserError(f"training failed: {type(exc).__name__}: {exc}")
            log.exception("%s: training failed", self.name)
            return self._failure(f"training failed ({type(exc).__name__})")

    def _fit(self, ins: FitIns) -> FitRes:
        o = self.options
        cfg = ins.config
        rnd, steps, warmup = int(cfg["round"]), int(cfg["local_steps"]), int(cfg["warmup_steps"])
        if o.threads:  # OpenMP's thread count is per thread: set it in the thread that trains
            torch.set_num_threads(o.threads)
        # Seeded before the discriminator is built and before dropout: the same result whatever the order
        # in which clients sharing a process take their turn.
        torch.manual_seed(_seed(o.seed, self.index, rnd))
        if self.generator is None:
            self.generator = _build_from_json(str(cfg["model"])).to(self.device)
            self.discriminator = PatchGAN(o.discriminator_config()).to(self.device)
            self.optimizers = make_optimizers(self.generator, self.discriminator, o.lr, o.betas, self.device)
        load_generator_arrays(self.generator, parameters_to_ndarrays(ins.parameters))
        t0 = time.perf_counter()
        rows = []

        def on_step(step: int, losses: dict) -> None:
            rows.append({**losses, "round": rnd, "seconds": round(time.perf_counter() - t0, 3)})

        train_steps(self.generator, self.discriminator, self.optimizers, self.data, steps, rng=self.rng,
                    batch=o.batch, start_step=(rnd - 1) * steps, warmup_steps=warmup, gan_loss=o.gan_loss,
                    l1_weight=o.l1_weight, gan_weight=o.gan_weight, ciede_weight=o.ciede_weight,
                    on_step=on_step)
        if self._log_path is not None:
            with open(self._log_path, "a", newline="") as f:
                w = csv.DictWriter(f, CLIENT_LOG_FIELDS, extrasaction="ignore")
                for r in rows:
                    w.writerow({k: (f"{r[k]:.6g}" if isinstance(r[k], float) else r[k]) for k in CLIENT_LOG_FIELDS})
        self.rounds_done += 1
        l1 = float(np.mean([r["l1"] for r in rows]))
        log.info("%s: round %d, %d local steps, mean L1 %.4f (%.1f s)", self.name, rnd, steps, l1,
                 time.perf_counter() - t0)
        return FitRes(status=Status(code=Code.OK, message=""),
                      parameters=ndarrays_to_parameters(generator_arrays(self.generator)),
                      num_examples=self.sample_count(steps), metrics={"local_steps": steps})


def run_client(client: GeneratorClient, server_address: str, max_wait_time: float = 60.0) -> None:
    """Connect ``client`` to a Flower server and serve rounds until the server disconnects it.

    ``max_wait_time``: how long to keep retrying while the server cannot be reached (then give up)."""
    _quiet_flower()
    flwr.client.start_client(server_address=server_address, client=client, insecure=True,
                             max_wait_time=max_wait_time)


# ------------------------------------------------------------------------------------------ server
class GeneratorFedAvg(FedAvg):
    """Flower's FedAvg for the generator: waits for all ``num_clients`` clients, sends them the global
    weights with the round's settings, averages their replies by sample count with :func:`weighted_average`
    and checkpoints the global model every round (``round_NNN.safetensors`` and ``model.safetensors``, both
    loadable with ``framecolor run --model``).  Any client failure stops the run with a
    :class:`FederatedError` that names the client."""

    def __init__(self, generator, out: Path, num_clients: int, rounds: int, local_steps: int, warmup_steps: int,
                 info: dict | None = None, connect_timeout: float = CONNECT_TIMEOUT):
        self.generator = generator
        self.out = Path(out)
        self.num_clients = num_clients
        self.rounds = rounds
        self.local_steps = local_steps
        self.warmup_steps = warmup_steps
        self.info = dict(info or {})
        self.connect_timeout = connect_timeout
        self.model_json = _model_config_json(generator)
        self.history: list[dict] = []
        self._t0 = time.perf_counter()
        super().__init__(fraction_fit=1.0, fraction_evaluate=0.0, min_fit_clients=num_clients,
                         min_evaluate_clients=0, min_available_clients=num_clients, accept_failures=False,
                         initial_parameters=ndarrays_to_parameters(generator_arrays(generator)),
                         on_fit_config_fn=self.fit_config)
        self.out.mkdir(parents=True, exist_ok=True)
        with open(self.out / "rounds.csv", "w", newline="") as f:
            csv.writer(f).writerow(ROUND_LOG_FIELDS)

    def fit_config(self, server_round: int) -> dict:
        """What the server says besides the weights: round, step counts and the architecture."""
        return {"round": server_round, "local_steps": self.local_steps, "warmup_steps": self.warmup_steps,
                "model": self.model_json}

    def configure_fit(self, server_round, parameters, client_manager):
        if not client_manager.wait_for(self.num_clients, timeout=self.connect_timeout):
            raise FederatedError(f"only {client_manager.num_available()} of {self.num_clients} clients connected "
                                 f"within {self.connect_timeout:.0f} s")
        return super().configure_fit(server_round, parameters, client_manager)

    def aggregate_fit(self, server_round, results, failures):
        if failures:
            raise FederatedError(f"round {server_round}: " + "; ".join(_describe_failure(f) for f in failures))
        if len(results) != self.num_clients:
            raise FederatedError(f"round {server_round}: {len(results)} of {self.num_clients} clients answered")
        pairs = [(parameters_to_ndarrays(res.parameters), res.num_examples) for _, res in results]
        # Replies arrive in completion order; a fixed order makes the float sums, hence the model, repeatable.
        pairs.sort(key=lambda p: (p[1], hashlib.sha1(p[0][0].tobytes()).hexdigest() if p[0] else ""))
        averaged = weighted_average(pairs)
        load_generator_arrays(self.generator, averaged)
        samples = [n for _, n in pairs]
        info = {**self.info, "federated": True, "round": server_round, "rounds": self.rounds,
                "local_steps": self.local_steps, "clients": len(results), "sample_counts": samples,
                "steps": server_round * self.local_steps,  # per client; all clients: x clients
                "warmup_steps": self.warmup_steps,
                "wall_seconds": round(time.perf_counter() - self._t0, 1)}
        name = f"round_{server_round:03d}.safetensors"
        save_generator(self.out / name, self.generator, info)
        save_generator(self.out / "model.safetensors", self.generator, info)
        row = {"round": server_round, "clients": len(results), "samples": sum(samples),
               "seconds": round(time.perf_counter() - self._t0, 2), "checkpoint": name}
        self.history.append(row)
        with open(self.out / "rounds.csv", "a", newline="") as f:
            csv.DictWriter(f, ROUND_LOG_FIELDS).writerow(row)
        log.info("round %d/%d: averaged %d clients (%d samples) -> %s", server_round, self.rounds, len(results),
                 sum(samples), self.out / name)
        return ndarrays_to_parameters(averaged), {"clients": len(results), "samples": sum(samples)}


def _describe_failure(failure) -> str:
    if isinstance(failure, BaseException):
        return f"a client's connection failed ({type(failure).__name__}: {failure})"
    proxy, res = failure
    return res.status.message or f"client {proxy.cid} failed (status {res.status.code.name})"


class _QuietFlower(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "deprecated" not in record.getMessage().lower()


def _quiet_flower() -> None:
    """Flower logs every message at INFO and a deprecation banner for the gRPC-bidi API; keep warnings."""
    flower = logging.getLogger("flwr")
    flower.setLevel(logging.DEBUG if log.isEnabledFor(logging.DEBUG) else logging.WARNING)
    if not any(isinstance(f, _QuietFlower) for f in flower.filters):
        flower.addFilter(_QuietFlower())


def serve(strategy: GeneratorFedAvg, address: str, rounds: int, round_timeout: float | None = None,
          on_listening: Callable[[], None] | None = None):
    """Run a Flower server on ``address`` for ``rounds`` rounds of ``strategy``; returns Flower's History.

    Clients are told to disconnect at the end, and also when the run stops early (a failed client), so
    client processes end by themselves.  ``on_listening`` is called once the gRPC port is open.
    """
    from flwr.server import Server, SimpleClientManager
    from flwr.server.superlink.fleet.grpc_bidi.grpc_server import start_grpc_server

    _quiet_flower()
    manager = SimpleClientManager()
    server = Server(client_manager=manager, strategy=strategy)
    try:
        grpc_server = start_grpc_server(client_manager=manager, server_address=address)
    except RuntimeError as exc:
        raise FederatedError(f"cannot listen on {address} ({exc})") from None
    try:
        if on_listening is not None:
            on_listening()
        history, _ = server.fit(num_rounds=rounds, timeout=round_timeout)
        return history
    finally:
        server.disconnect_all_clients(timeout=10)
        grpc_server.stop(grace=1)


# ------------------------------------------------------------------------------------------ simulation
@dataclass
class FederatedOptions:
    """A FedAvg run: ``clients`` (one data spec each), ``rounds`` x ``local_steps``; ``train`` holds the
    model and training settings shared by all clients (its ``data`` and ``steps`` are set from these)."""

    clients: Sequence[str]
    rounds: int
    local_steps: int
    train: TrainOptions
    names: Sequence[str] | None = None
    connect_timeout: float = CONNECT_TIMEOUT
    round_timeout: float | None = None
    client_logs: bool = True

    def __post_init__(self):
        self.clients = tuple(self.clients)
        if len(self.clients) < 1:
            raise UserError("--federated needs at least one --client")
        if self.rounds < 1:
            raise UserError("--rounds must be at least 1")
        if self.local_steps < 1:
            raise UserError("--local-steps must be at least 1")
        self.names = tuple(self.names or (f"client-{i + 1}" for i in range(len(self.clients))))
        if len(self.names) != len(self.clients) or len(set(self.names)) != len(self.names):
            raise UserError("one distinct name per client is needed")


def federated_options(clients: Sequence[str], out, rounds: int, local_steps: int, **train_kwargs) -> FederatedOptions:
    """Convenience: FederatedOptions with a TrainOptions made from keyword arguments (TrainOptions' names)."""
    train = TrainOptions(data=list(clients), out=out, steps=rounds * local_steps, **train_kwargs)
    return FederatedOptions(clients=clients, rounds=rounds, local_steps=local_steps, train=train)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client_train_options(base: TrainOptions, data: Sequence[str], out: Path) -> TrainOptions:
    import dataclasses

    return dataclasses.replace(base, data=tuple(data), out=Path(out))


def simulate(options: FederatedOptions, strategy_cls: type[GeneratorFedAvg] = GeneratorFedAvg) -> Path:
    """FedAvg with N clients on this machine: a Flower server on 127.0.0.1 and one client thread per data
    spec, talking through Flower's gRPC message path.  Returns ``out/model.safetensors``.

    Errors: a client that cannot train makes the run stop with a one-line :class:`FederatedError` that
    names the client and, since the client is local, the data spec it was given.
    """
    from framecolor.models import build_generator

    t = options.train
    if t.threads:
        torch.set_num_threads(t.threads)
    out = t.out
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(t.seed)
    generator = build_generator(t.generator_config())
    info = {"arch": t.arch, "seed": t.seed, "batch": t.batch,
            "crop": t.crop, "gan_loss": t.gan_loss, "l1_weight": t.l1_weight, "data": list(options.clients)}
    strategy = strategy_cls(generator, out, num_clients=len(options.clients), rounds=options.rounds,
                            local_steps=options.local_steps, warmup_steps=t.warmup, info=info,
                            connect_timeout=options.connect_timeout)
    address = f"127.0.0.1:{free_port()}"
    lock = threading.Lock()
    clients: dict[str, GeneratorClient] = {}
    crashes: dict[str, BaseException] = {}

    def client_main(i: int, name: str, spec: str) -> None:
        try:
            copt = client_train_options(t, [spec], out / "clients" / name)
            client = GeneratorClient(name, copt, index=i, lock=lock, write_log=options.client_logs,
                                     log_errors=False)
            clients[name] = client
            run_client(client, address, max_wait_time=options.connect_timeout)
        except BaseException as exc:  # reported after the server stops
            crashes[name] = exc

    threads = [threading.Thread(target=client_main, args=(i, n, s), name=f"fedavg-{n}", daemon=True)
               for i, (n, s) in enumerate(zip(options.names, options.clients))]

    def start_clients() -> None:
        for th in threads:
            th.start()

    try:
        serve(strategy, address, options.rounds, options.round_timeout, on_listening=start_clients)
    except FederatedError as exc:
        details = []
        for name, spec in zip(options.names, options.clients):
            c = clients.get(name)
            local = crashes.get(name) or (c.error if c is not None else None)
            if local is not None:
                details.append(f"{name} (--client {spec}): {local}")
        raise FederatedError(f"federated training stopped: {exc}" + ("; " + "; ".join(details) if details else "")
                             ) from None
    finally:
        for th in threads:
            if th.is_alive():
                th.join(timeout=15)
    return out / "model.safetensors"
