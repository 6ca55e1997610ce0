"""The pygmo problem of the pruning search, and the per-process context that evaluates it.

pygmo deep-copies and pickles user problems, so :class:`PruningProblem` holds configuration only: a token naming
the search, its bounds and objective layout, and (for other processes) the path of a spec file. The model, data,
encoding and evaluator live in a :class:`SearchContext` registered under the token in each process; a process that
has none (a worker, an ipyparallel engine) builds it from the spec file.

Objectives:

* ``"nsga2"`` (feasibility first, two objectives): a candidate that fits gets ``[-score, worst budget use]``; one
  that does not gets ``[PENALTY + total excess, worst budget use]`` and is never scored, so every feasible
  candidate dominates every infeasible one.
* ``"gaco"`` (one objective, native constraints): ``[-score or PENALTY + excess, use_1 - 1, use_2 - 1, ...]``.
"""

from __future__ import annotations

import pickle
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

PENALTY = 1e9
_CONTEXTS: dict[str, SearchContext] = {}


class PruningProblem:
    """pygmo user-defined problem: integer genes in ``[0, upper]``, objectives as described in the module."""

    def __init__(self, token: str, upper: tuple[int, ...], budgets: int, objectives: str, spec: str | None) -> None:
        self.token = token
        self.upper = tuple(int(u) for u in upper)
        self.budgets = int(budgets)
        self.objectives = objectives
        self.spec = spec

    def get_bounds(self):
        return ([0.0] * len(self.upper), [float(u) for u in self.upper])

    def get_nix(self) -> int:
        return len(self.upper)

    def get_nobj(self) -> int:
        return 2 if self.objectives == "nsga2" else 1

    def get_nic(self) -> int:
        return 0 if self.objectives == "nsga2" else self.budgets

    def get_name(self) -> str:
        return "gencprunex per-group pruning ratios"

    def fitness(self, x):
        return self.batch_fitness(np.asarray(x, dtype=float))

    def batch_fitness(self, dvs):
        return context(self.token, self.spec).batch_fitness(dvs, self.objectives)

    def has_batch_fitness(self) -> bool:
        return True


class ScoreProblem:
    """The score of one candidate as a pygmo problem (``[-score]``), for evaluation on an ipyparallel cluster."""

    def __init__(self, token: str, upper: tuple[int, ...], spec: str) -> None:
        self.token, self.upper, self.spec = token, tuple(upper), spec

    def get_bounds(self):
        return ([0.0] * len(self.upper), [float(u) for u in self.upper])

    def get_nix(self) -> int:
        return len(self.upper)

    def fitness(self, x):
        ctx = context(self.token, self.spec)
        return [-ctx.score(ctx.encoding.clip(x))]


class SearchContext:
    """Everything one process needs to evaluate candidates: the encoding, the evaluator, a memo of scores.

    ``make_evaluator`` builds the evaluator on first use (so a context that only checks budgets never loads it).
    ``dispatch`` scores a list of genes: in this process, in a process pool, or on an ipyparallel cluster.
    """

    def __init__(self, encoding, make_evaluator, spec: str | None = None) -> None:
        self.encoding = encoding
        self._make_evaluator = make_evaluator
        self._evaluator = None
        self.spec = spec
        self.scores: dict[tuple[int, ...], float] = {}
        self.order: list[tuple[int, ...]] = []
        self.evaluations = 0
        self.eval_seconds = 0.0
        self._pool = None
        self._bfe = None
        self.parallel = "serial"
        self.token_for_workers: str | None = None

    @property
    def evaluator(self):
        if self._evaluator is None:
            self._evaluator = self._make_evaluator()
        return self._evaluator

    def score(self, genes: tuple[int, ...]) -> float:
        """Score of one candidate, evaluated in this process."""
        return float(self.evaluator(self.encoding.plan(genes)))

    def batch_fitness(self, dvs, objectives: str) -> np.ndarray:
        n = len(self.encoding.upper)
        rows = [self.encoding.clip(x) for x in np.asarray(dvs, dtype=float).reshape(-1, n)]
        usages = [self.encoding.usage(g) for g in rows]
        todo = list(dict.fromkeys(g for g, u in zip(rows, usages, strict=True) if u.feasible and g not in self.scores))
        if todo:
            self.record(todo, self.dispatch(todo))
        fitness = []
        for genes, usage in zip(rows, usages, strict=True):
            first = -self.scores[genes] if usage.feasible else PENALTY + usage.violation
            if objectives == "nsga2":
                fitness.append([first, usage.worst])
            else:
                fitness.append([first, *(f - 1.0 for f in usage.fractions)])
        return np.asarray(fitness, dtype=float).ravel()

    def record(self, genes: list[tuple[int, ...]], scores: list[float]) -> None:
        for g, s in zip(genes, scores, strict=True):
            self.scores[g] = float(s)
            self.order.append(g)
        self.evaluations += len(genes)

    def dispatch(self, todo: list[tuple[int, ...]]) -> list[float]:
        """Scores of ``todo``, in order, from wherever scoring runs (this process, workers or a cluster)."""
        start = time.perf_counter()
        if self.parallel == "processes":
            scores = list(self._pool.map(_score_in_worker, [(self.token_for_workers, g) for g in todo]))
        elif self.parallel == "ipyparallel":
            import pygmo as pg

            problem = pg.problem(ScoreProblem(self.token_for_workers, self.encoding.upper, self.spec))
            flat = np.asarray(todo, dtype=float).ravel()
            scores = [-f for f in np.asarray(self._bfe(problem, flat)).ravel()]
        else:
            scores = [self.score(g) for g in todo]
        self.eval_seconds += time.perf_counter() - start
        return scores

    # parallel evaluation ---------------------------------------------------------------------
    def start_processes(self, token: str, n_jobs: int) -> None:
        """Score candidates in ``n_jobs`` spawned processes, each loading the search from the spec file.

        ``token`` keys the search in the workers' registries (any name unique to this search).
        """
        self.token_for_workers = token
        self._pool = ProcessPoolExecutor(
            n_jobs, mp_context=get_context("spawn"), initializer=_init_worker, initargs=(token, self.spec)
        )
        self.parallel = "processes"

    def start_ipyparallel(self, token: str) -> None:
        """Score candidates on the running ipyparallel cluster through pygmo's ``ipyparallel_bfe``."""
        import pygmo as pg

        self.token_for_workers = token
        self._bfe = pg.bfe(pg.ipyparallel_bfe())
        self.parallel = "ipyparallel"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        self.parallel = "serial"


def register(token: str, ctx: SearchContext) -> None:
    """Make ``ctx`` the context of search ``token`` in this process."""
    _CONTEXTS[token] = ctx


def unregister(token: str) -> None:
    ctx = _CONTEXTS.pop(token, None)
    if ctx is not None:
        ctx.close()


def context(token: str, spec: str | None) -> SearchContext:
    """The context of search ``token`` in this process, built from the spec file when there is none yet."""
    ctx = _CONTEXTS.get(token)
    if ctx is None:
        if spec is None:
            raise RuntimeError(f"search '{token}' has no context in this process and no spec file to build one")
        ctx = context_from_spec(spec)
        _CONTEXTS[token] = ctx
    return ctx


def write_spec(path: Path, spec: dict) -> str:
    """Write the pickled spec (paths, settings, grids, scores: no Keras objects) and return its path."""
    with open(path, "wb") as handle:
        pickle.dump(spec, handle)
    return str(path)


def context_from_spec(path: str) -> SearchContext:
    """Rebuild a search context in a fresh process from the spec written by :func:`write_spec`."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    from ..graph import LayerGraph
    from .encoding import Encoding
    from .evaluators import make_evaluator

    with open(path, "rb") as handle:
        spec = pickle.load(handle)
    model = keras.models.load_model(spec["model"], compile=False, safe_mode=False)
    graph = LayerGraph(model, ignore=spec["ignore"])
    encoding = Encoding(
        graph,
        spec["grids"],
        spec["scores"],
        spec["hardware"],
        spec["min_channels"],
        spec["round_to"],
        spec["offsets"],
    )
    with np.load(spec["data"], allow_pickle=False) as data:
        train = (data["x_train"], data["y_train"])
        validation = (data["x_val"], data["y_val"])
    return SearchContext(
        encoding,
        lambda: make_evaluator(spec["evaluator"], model, graph, train, validation, spec["settings"]),
        spec=path,
    )


def _init_worker(token: str, spec: str) -> None:
    context(token, spec).evaluator  # noqa: B018 - load the model and compile the evaluator once per worker


def _score_in_worker(job: tuple[str, tuple[int, ...]]) -> float:
    token, genes = job
    return context(token, None).score(genes)
