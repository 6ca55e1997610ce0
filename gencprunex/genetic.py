"""Genetic mode: per-group pruning ratios found by a pygmo search under RAM / Flash / MACs budgets."""

from __future__ import annotations

import numbers
import os
import pickle
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from .data import _is_dataset, check_data, integer_labels, is_batched, resolve_data, split_xy
from .errors import DataError, InfeasibleBudgetError, ModelError, ParameterError
from .finetune import FineTuner
from .graph import LayerGraph
from .hardware.profile import HardwareProfile
from .importance import group_scores, resolve
from .plan import check_positive_int, check_ratio, group_caps, kept_count
from .pruners import _names
from .search import checkpoint as checkpoints
from .search.driver import ALGORITHMS, Search, pareto_front, ranked
from .search.encoding import Encoding, calibration_offsets
from .search.evaluators import Scorer, calibration_batch, check_evaluator, make_evaluator
from .search.masked import MaskedModel
from .search.problem import SearchContext, unregister, write_spec
from .search.progress import Progress, human_bytes, human_count
from .surgery import kept_outputs, prune_model

DEFAULT_GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


class GeneticPruner(BaseEstimator):
    """Genetic mode: the per-group ratios with the best accuracy among those that fit ``hardware``.

    One integer gene per prunable channel group picks a ratio from ``ratio_grid``. Every candidate's RAM, Flash
    and MACs come from the analytic estimator (milliseconds, no model built), corrected once per ``fit`` by
    converting the unpruned model (the converter's tensor names make a fixed Flash difference that the estimator
    cannot predict on every model); a candidate over any budget of ``hardware`` is never scored. A candidate that
    fits is scored by ``evaluator`` on validation data, never on the data you report on. The best candidates
    (``finalists``) are fine-tuned ``finetune_epochs`` epochs and the one with the best validation score after
    fine-tuning wins.

    Parameters
    ----------
    hardware:
        A :class:`HardwareProfile` (or a preset name) with at least one budget.
    ratio_grid:
        The ratios a group may take (each in [0, 1)).
    population:
        Candidates per generation (a multiple of 4, at least 8, for ``algorithm="nsga2"``).
    generations:
        Generations evolved after the initial population.
    evaluator:
        ``"bn-recalibrate"`` (channels masked on one compiled copy, BatchNorm statistics recomputed on
        ``calibration_samples`` training samples, accuracy on the validation data), ``"finetune"`` (each candidate
        built and trained ``search_epochs`` epochs: slow) or a callable ``(pruned_model, train, validation) ->
        score`` (higher is better).
    finetune_epochs:
        Epochs of fine-tuning for each finalist and the model ``transform`` returns; 0 returns the pruned model.
    validation_split:
        Fraction of ``data`` held out (stratified, seeded) to score candidates when ``validation_data`` is not
        given.
    seed:
        Seeds the population, the algorithm, the validation split, the calibration samples and fine-tuning.
    checkpoint:
        Path of a file the search state is written to (atomically) after every generation; ``fit`` resumes from
        it when it exists, and a resumed search ends exactly as an uninterrupted one.
    n_jobs:
        Processes that score a generation in parallel (1: this process; -1: one per CPU).
    verbose:
        0 silent, 1 a progress bar, 2 one line per generation.
    algorithm:
        ``"nsga2"`` (default; feasibility-first objectives: accuracy and budget use) or ``"gaco"`` (single
        objective with native constraints).
    bfe:
        None, or ``"ipyparallel"`` to score candidates on a running ipyparallel cluster through pygmo
        (``pip install "gencprunex[cluster]"``; the engines must see this machine's temporary folder).
    importance, round_to, min_channels, ignore, max_ratio:
        As for :class:`FixedPruner`; ``max_ratio`` removes grid values above a group's cap.
    calibration_samples:
        Training samples in the BatchNorm calibration batch of ``"bn-recalibrate"``.
    search_epochs:
        Epochs per candidate of ``evaluator="finetune"``.
    finalists:
        How many candidates are fine-tuned before choosing (when ``finetune_epochs`` > 0): the best-scoring
        ones, and among them fixed mode's answer (the lowest uniform ratio that fits), so that the choice is never
        worse on the validation data than fixed mode after the same fine-tuning.
    distill:
        Weight of distillation from the unpruned model while fine-tuning (see :class:`FineTuner`).
    batch_size, learning_rate:
        Batch size and Adam learning rate of fine-tuning.

    Fitted attributes
    -----------------
    best_ratios_ ({group: ratio}), best_score_ (the evaluator's validation score of the chosen candidate),
    footprint_ (its estimated :class:`Footprint`, the corrections in ``details["calibration"]``), pareto_ (every
    non-dominated candidate that fits: ratios, score, ram, flash, macs), history_ (per generation: best, mean,
    feasible fraction, seconds, evaluations), baseline_score_ (the unpruned model under the same evaluator),
    finalists_, graph_, plan_, keep_, ratios_, search_seconds_, evaluations_, seconds_per_candidate_, score_name_.
    """

    def __init__(
        self,
        hardware,
        ratio_grid=DEFAULT_GRID,
        population=16,
        generations=10,
        evaluator="bn-recalibrate",
        finetune_epochs=3,
        validation_split=0.2,
        seed=0,
        checkpoint=None,
        n_jobs=1,
        verbose=1,
        algorithm="nsga2",
        bfe=None,
        importance="l1",
        round_to=1,
        min_channels=1,
        ignore=(),
        max_ratio=None,
        calibration_samples=256,
        search_epochs=1,
        finalists=3,
        distill=0.0,
        batch_size=64,
        learning_rate=1e-3,
    ):
        self.hardware = hardware
        self.ratio_grid = ratio_grid
        self.population = population
        self.generations = generations
        self.evaluator = evaluator
        self.finetune_epochs = finetune_epochs
        self.validation_split = validation_split
        self.seed = seed
        self.checkpoint = checkpoint
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.algorithm = algorithm
        self.bfe = bfe
        self.importance = importance
        self.round_to = round_to
        self.min_channels = min_channels
        self.ignore = ignore
        self.max_ratio = max_ratio
        self.calibration_samples = calibration_samples
        self.search_epochs = search_epochs
        self.finalists = finalists
        self.distill = distill
        self.batch_size = batch_size
        self.learning_rate = learning_rate

    # fitting -----------------------------------------------------------------------------------
    def fit(self, model, data=None, validation_data=None):
        """Search ratios for ``model`` on ``data`` (``(x, y)``, an ``.npz`` path or a ``tf.data.Dataset``).

        ``validation_data`` (same forms) scores candidates; without it ``validation_split`` of ``data`` is held
        out. ``model`` is never modified.
        """
        started = time.perf_counter()
        settings = self._settings()
        hardware = settings["hardware"]
        graph = LayerGraph(model, ignore=_names(self.ignore, "ignore"))
        graph.check_supported()
        if not graph.prunable:
            raise ModelError(f"model '{model.name}' has no prunable channel group; nothing to search")
        train, validation, full = self._data(model, data, validation_data)
        scores = group_scores(graph, graph.prunable, resolve(self.importance), train)
        grids = _group_grids(graph, settings["grid"], group_caps(graph, self.max_ratio), settings)
        offsets = _calibration(model, graph, train[0])
        encoding = Encoding(graph, grids, scores, hardware, settings["min_channels"], settings["round_to"], offsets)
        _check_reachable(encoding, hardware)
        if not encoding.names:
            raise ParameterError(
                f"nothing to search: with ratio_grid={list(settings['grid'])} and max_ratio={self.max_ratio!r} every "
                "prunable group has a single choice; widen ratio_grid or use FixedPruner / DynamicPruner"
            )
        progress = Progress(settings["generations"], self.verbose, Scorer(model, validation[1]).name)
        evaluator_settings = {
            "calibration_samples": settings["calibration_samples"],
            "search_epochs": settings["search_epochs"],
            "batch_size": settings["batch_size"],
            "seed": settings["seed"],
        }
        workdir = None
        try:
            spec = None
            if settings["n_jobs"] > 1 or self.bfe is not None:
                workdir = Path(tempfile.mkdtemp(prefix="gencprunex-search-"))
                spec = _write_spec(
                    workdir,
                    model,
                    graph,
                    grids,
                    scores,
                    hardware,
                    offsets,
                    train,
                    validation,
                    self,
                    evaluator_settings,
                    settings,
                )
            ctx = SearchContext(
                encoding,
                lambda: make_evaluator(self.evaluator, model, graph, train, validation, evaluator_settings),
                spec=spec,
            )
            fingerprint = checkpoints.fingerprint(model, [*train, *validation], self._fingerprint_params())
            search = Search(
                encoding,
                ctx,
                self.algorithm,
                settings["population"],
                settings["generations"],
                settings["seed"],
                tuple(settings["grid"]),
                fingerprint,
                self.checkpoint,
                progress,
            )
            if settings["n_jobs"] > 1:  # workers key their copy of the search by its spec file
                ctx.start_processes(spec, settings["n_jobs"])
            elif self.bfe is not None:
                ctx.start_ipyparallel(spec)
            state = search.resume_or_start()
            if state.generation > settings["generations"]:
                raise ParameterError(
                    f"checkpoint '{self.checkpoint}' already holds {state.generation} generations, more than "
                    f"generations={settings['generations']}; raise generations or use another checkpoint"
                )
            state = search.run(state)
            ctx.close()
            self.score_name_ = progress.score_name
            self._store_search(model, graph, encoding, ctx, state)
            self.baseline_score_ = ctx.score(tuple(0 for _ in encoding.upper)) if 0.0 in settings["grid"] else None
            self._choose(model, graph, encoding, ctx, (train, validation, full), settings, progress)
        finally:
            if "ctx" in locals():
                ctx.close()
            if "state" in locals():
                unregister(state.token)
            if workdir is not None:
                shutil.rmtree(workdir, ignore_errors=True)
        self.seconds_ = time.perf_counter() - started
        return self

    def _store_search(self, model, graph, encoding, ctx, state) -> None:
        self.model_in_ = model
        self.graph_ = graph
        self.encoding_ = encoding
        self.history_ = [dict(entry) for entry in state.history]
        self.evaluations_ = state.evaluations
        self.search_seconds_ = state.search_seconds
        self.seconds_per_candidate_ = state.eval_seconds / state.evaluations if state.evaluations else 0.0
        self.scores_ = dict(ctx.scores)
        self.pareto_ = [self._describe(g) for g in pareto_front(encoding, ctx.scores)]

    def _describe(self, genes) -> dict:
        usage = self.encoding_.usage(genes)
        return {
            "ratios": self.encoding_.ratios(genes),
            "score": self.scores_[genes],
            "ram": usage.ram,
            "flash": usage.flash,
            "macs": usage.macs,
            "params": usage.params,
        }

    def _choose(self, model, graph, encoding, ctx, splits, settings, progress) -> None:
        """Pick the winner (fine-tuning the finalists on the training split when asked) and build its model.

        The winner's model is then fine-tuned afresh on all of ``data`` (training and validation split), so that
        it gets exactly the fine-tuning budget fixed mode would get.
        """
        train, validation, full = splits
        order = ranked(encoding, ctx.scores)
        tune = settings["finetune_epochs"] > 0
        count = settings["finalists"] if tune else 1
        finalists = order[:count]
        uniform = _best_uniform(encoding, settings["grid"])
        if count > 1 and uniform in ctx.scores and uniform not in finalists:
            finalists = [*finalists[: count - 1], uniform]
        scorer = Scorer(model, validation[1])
        teacher = model if settings["distill"] > 0 else None
        self.finalists_ = []
        best = None
        for genes in finalists:
            entry = self._describe(genes)
            if len(finalists) > 1:
                progress.message(
                    f"fine-tuning finalist {len(self.finalists_) + 1}/{len(finalists)} "
                    f"({settings['finetune_epochs']} epochs on the training split)"
                )
                pruned = prune_model(model, graph, encoding.plan(genes))
                tuned = self._tuner(settings).fit(pruned, train, teacher=teacher).model_
                entry["tuned_score"] = scorer(tuned.predict(validation[0], verbose=0, batch_size=256))
            self.finalists_.append(entry)
            key = entry.get("tuned_score", entry["score"])
            if best is None or key > best[0]:
                best = (key, genes)
        genes = best[1]
        self.model_ = prune_model(model, graph, encoding.plan(genes))
        if tune:
            progress.message(f"fine-tuning the chosen model ({settings['finetune_epochs']} epochs on all data)")
            self.model_ = self._tuner(settings).fit(self.model_, full, teacher=teacher).model_
        elif self.evaluator == "bn-recalibrate":
            # the model that was scored: BatchNorm statistics recomputed on the same calibration samples
            masked = MaskedModel(self.model_)
            masked.recalibrate(calibration_batch(train[0], settings))
            self.model_ = masked.copy
        self.best_genes_ = genes
        self.best_ratios_ = encoding.ratios(genes)
        self.ratios_ = dict(self.best_ratios_)
        self.best_score_ = ctx.scores[genes]
        self.plan_ = encoding.plan(genes)
        self.keep_ = kept_outputs(graph, self.plan_)
        self.channels_ = {g.name: (g.size, len(self.plan_.get(g.name, range(g.size)))) for g in graph.prunable}
        self.footprint_ = encoding.footprint(self.plan_)
        usage = encoding.usage(genes)
        progress.message(
            f"chosen: {self.score_name_} {self.best_score_:.4f}"
            + (f" ({best[0]:.4f} after fine-tuning on the training split)" if len(finalists) > 1 else "")
            + f", RAM {human_bytes(usage.ram)}, Flash {human_bytes(usage.flash)}, MACs {human_count(usage.macs)}"
        )

    @staticmethod
    def _tuner(settings) -> FineTuner:
        return FineTuner(
            epochs=settings["finetune_epochs"],
            batch_size=settings["batch_size"],
            distill=settings["distill"],
            learning_rate=settings["learning_rate"],
            validation_split=0.0,
            seed=settings["seed"],
        )

    def transform(self, model=None):
        """The chosen model: pruned with ``best_ratios_`` and fine-tuned when ``finetune_epochs`` > 0 (a copy).

        Another ``model`` with the fitted model's channel groups is pruned with the same channels (not
        fine-tuned: there is no data here).
        """
        check_is_fitted(self, "plan_")
        if model is None or model is self.model_in_:
            from .finetune import copy_model

            return copy_model(self.model_)
        graph = LayerGraph(model, ignore=_names(self.ignore, "ignore"))
        if [(g.name, g.size) for g in graph.groups] != [(g.name, g.size) for g in self.graph_.groups]:
            raise ModelError(
                f"model '{model.name}' does not have the channel groups of the fitted model "
                f"'{self.model_in_.name}'; fit the pruner on it instead"
            )
        return prune_model(model, graph, self.plan_)

    def fit_transform(self, model, data=None, validation_data=None):
        """``fit(model, data, validation_data)`` then ``transform()``."""
        return self.fit(model, data, validation_data).transform()

    def plot_pareto(self, path=None):
        """A figure of score against RAM, Flash and MACs for the Pareto candidates (needs matplotlib).

        Saved to ``path`` (atomically) when given; the matplotlib figure is returned.
        """
        check_is_fitted(self, "pareto_")
        from .search.plot import plot_pareto

        return plot_pareto(self, path)

    # parameters -----------------------------------------------------------------------------------
    def _settings(self) -> dict:
        hardware = self.hardware
        if isinstance(hardware, str):
            hardware = HardwareProfile.preset(hardware)
        if not isinstance(hardware, HardwareProfile):
            raise ParameterError(
                f"hardware must be a HardwareProfile or a preset name, got {type(self.hardware).__name__}"
            )
        if hardware.ram is None and hardware.flash is None and hardware.macs is None:
            raise ParameterError(
                f"hardware profile '{hardware.name}' sets no budget (ram, flash and macs are all None); "
                "GeneticPruner needs at least one"
            )
        grid = _grid(self.ratio_grid)
        population = check_positive_int(self.population, "population")
        if self.algorithm not in ALGORITHMS:
            raise ParameterError(f"algorithm={self.algorithm!r} is unknown; use one of {', '.join(ALGORITHMS)}")
        if self.algorithm == "nsga2" and (population < 8 or population % 4):
            raise ParameterError(f"population={population} must be a multiple of 4 and at least 8 for nsga2")
        generations = _non_negative_int(self.generations, "generations")
        check_evaluator(self.evaluator)
        finetune_epochs = _non_negative_int(self.finetune_epochs, "finetune_epochs")
        split = self.validation_split
        if isinstance(split, bool) or not isinstance(split, numbers.Real) or not 0 < split < 1:
            raise ParameterError(f"validation_split must be a number in (0, 1), got {split!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral) or self.seed < 0:
            raise ParameterError(f"seed must be an integer >= 0, got {self.seed!r}")
        n_jobs = self.n_jobs
        if n_jobs == -1:
            n_jobs = os.cpu_count() or 1
        n_jobs = check_positive_int(n_jobs, "n_jobs (or -1)")
        if self.bfe not in (None, "ipyparallel"):
            raise ParameterError(f"bfe must be None or 'ipyparallel', got {self.bfe!r}")
        if self.bfe is not None and n_jobs > 1:
            raise ParameterError("give either n_jobs > 1 or bfe='ipyparallel', not both")
        if self.verbose not in (0, 1, 2) or isinstance(self.verbose, bool):
            raise ParameterError(f"verbose must be 0, 1 or 2, got {self.verbose!r}")
        if self.checkpoint is not None and not isinstance(self.checkpoint, str | os.PathLike):
            raise ParameterError(f"checkpoint must be a file path or None, got {self.checkpoint!r}")
        distill = self.distill
        if isinstance(distill, bool) or not isinstance(distill, numbers.Real) or not 0 <= distill <= 1:
            raise ParameterError(f"distill must be a number in [0, 1], got {distill!r}")
        return {
            "hardware": hardware,
            "grid": grid,
            "population": population,
            "generations": generations,
            "finetune_epochs": finetune_epochs,
            "split": float(split),
            "seed": int(self.seed),
            "n_jobs": n_jobs,
            "min_channels": check_positive_int(self.min_channels, "min_channels"),
            "round_to": check_positive_int(self.round_to, "round_to"),
            "calibration_samples": check_positive_int(self.calibration_samples, "calibration_samples"),
            "search_epochs": check_positive_int(self.search_epochs, "search_epochs"),
            "finalists": check_positive_int(self.finalists, "finalists"),
            "distill": float(distill),
            "batch_size": check_positive_int(self.batch_size, "batch_size"),
            "learning_rate": _positive_real(self.learning_rate, "learning_rate"),
        }

    def _fingerprint_params(self) -> dict:
        """The parameters that change the search's course (not ``generations``: a search may be extended)."""
        params = self.get_params()
        for name in (
            "generations",
            "checkpoint",
            "n_jobs",
            "verbose",
            "bfe",
            "finetune_epochs",
            "finalists",
            "distill",
            "batch_size",
            "learning_rate",
        ):
            if name == "batch_size" and self.evaluator == "finetune":
                continue  # evaluator="finetune" trains every candidate with it: it changes the scores
            params.pop(name, None)
        return {k: _stable(v) for k, v in params.items()}

    # data ----------------------------------------------------------------------------------------------
    def _data(self, model, data, validation_data):
        if data is None:
            raise DataError("GeneticPruner.fit needs training data: (x, y) arrays, a tf.data.Dataset or an .npz path")
        x, y = _arrays(model, data, "data")
        check_data(model, x, y)
        if validation_data is not None:
            x_val, y_val = _arrays(model, validation_data, "validation_data")
            check_data(model, x_val, y_val)
            return (x, y), (x_val, y_val), (x, y)
        stratify = None
        try:
            ids, _ = integer_labels(y)
            if np.min(np.bincount(ids)[np.bincount(ids) > 0]) >= 2:
                stratify = ids
        except DataError:
            pass
        rows = np.arange(len(x))
        train_rows, val_rows = train_test_split(
            rows, test_size=float(self.validation_split), random_state=int(self.seed), stratify=stratify
        )
        train_rows, val_rows = np.sort(train_rows), np.sort(val_rows)
        return (x[train_rows], y[train_rows]), (x[val_rows], y[val_rows]), (x, y)


# helpers ---------------------------------------------------------------------------------------------------
def _grid(ratio_grid) -> list[float]:
    if isinstance(ratio_grid, str) or not hasattr(ratio_grid, "__iter__"):
        raise ParameterError(f"ratio_grid must be a list of ratios in [0, 1), got {ratio_grid!r}")
    values = sorted({check_ratio(r, f"ratio_grid value {r!r}") for r in ratio_grid})
    if not values:
        raise ParameterError("ratio_grid is empty; give at least one ratio in [0, 1)")
    return values


def _group_grids(graph: LayerGraph, grid: list[float], caps: dict, settings: dict) -> dict[str, tuple[float, ...]]:
    """Each prunable group's choices: grid values up to its cap, one per distinct kept-channel count."""
    grids = {}
    for group in graph.prunable:
        cap = caps.get(group.name, 1.0)
        allowed = [r for r in grid if r <= cap + 1e-12] or [0.0]
        seen: dict[int, float] = {}
        for ratio in allowed:
            seen.setdefault(kept_count(group.size, ratio, settings["min_channels"], settings["round_to"]), ratio)
        grids[group.name] = tuple(sorted(seen.values()))
    return grids


def _check_reachable(encoding: Encoding, hardware: HardwareProfile) -> None:
    """:class:`InfeasibleBudgetError` when even the most pruned candidate does not fit."""
    usage = encoding.usage(encoding.smallest())
    if usage.feasible:
        return
    reached = {"ram": usage.ram, "flash": usage.flash, "macs": usage.macs}
    over = []
    for budget, limit in zip(encoding.budgets, encoding.limits, strict=True):
        if reached[budget] > limit:
            show = human_count if budget == "macs" else human_bytes
            unit = "" if budget == "macs" else " B"
            over.append(
                f"{_BUDGET_NAMES[budget]} {show(reached[budget])} "
                f"({reached[budget]:,}{unit}) > {show(limit)} ({int(limit):,}{unit})"
            )
    highest = max(max(grid) for grid in encoding.grids.values())
    raise InfeasibleBudgetError(
        f"no candidate fits profile '{hardware.name}': even the most pruned model the search may build "
        f"(ratios up to {highest}) needs {'; '.join(over)}; smallest reachable: RAM {human_bytes(usage.ram)}, "
        f"Flash {human_bytes(usage.flash)}, MACs {human_count(usage.macs)}"
    )


def _arrays(model, data, what: str):
    """``(x, y)`` arrays from arrays, an ``.npz`` path or a ``tf.data.Dataset`` (read once into memory)."""
    data = resolve_data(data)
    if not _is_dataset(data):
        return split_xy(data, what)
    check_data(model, data)
    batches = list(data.as_numpy_iterator())
    if not batches:
        raise DataError(f"{what}: the dataset is empty")
    if not all(isinstance(b, tuple) and len(b) == 2 for b in batches):
        raise DataError(f"{what}: the dataset must yield (x, y) pairs")
    join = np.concatenate if is_batched(model, data) else np.stack
    return join([b[0] for b in batches]), join([b[1] for b in batches])


def _write_spec(
    workdir, model, graph, grids, scores, hardware, offsets, train, validation, pruner, evaluator_settings, settings
) -> str:
    """Files other processes build the search from: the model, the data and a pickled spec."""
    for what, value in (("evaluator", pruner.evaluator), ("importance", pruner.importance)):
        if callable(value):
            try:
                pickle.dumps(value)
            except Exception:
                raise ParameterError(
                    f"n_jobs > 1 and bfe need a {what} that can be pickled (a module-level function); got {value!r}"
                ) from None
    model_path = workdir / "model.keras"
    try:
        model.save(model_path)
    except Exception as error:
        raise ModelError(
            f"model '{model.name}' cannot be saved for parallel evaluation ({error}); use n_jobs=1"
        ) from None
    data_path = workdir / "data.npz"
    np.savez(data_path, x_train=train[0], y_train=train[1], x_val=validation[0], y_val=validation[1])
    spec = {
        "model": str(model_path),
        "data": str(data_path),
        "ignore": graph.ignore,
        "grids": grids,
        "scores": scores,
        "hardware": hardware,
        "offsets": offsets,
        "min_channels": settings["min_channels"],
        "round_to": settings["round_to"],
        "evaluator": pruner.evaluator,
        "settings": evaluator_settings,
    }
    return write_spec(workdir / "spec.pkl", spec)


_BUDGET_NAMES = {"ram": "RAM", "flash": "Flash", "macs": "MACs"}


def _calibration(model, graph: LayerGraph, x: np.ndarray) -> dict[str, int]:
    """Estimate corrections from one conversion of ``model`` (see ``calibration_offsets``); none if it fails."""
    try:
        return calibration_offsets(model, graph, x[:64])
    except Exception as error:  # the search still runs on the analytic estimate alone
        warnings.warn(
            f"could not convert model '{model.name}' to calibrate the footprint estimate ({error}); "
            "budgets are checked on the analytic estimate alone",
            stacklevel=3,
        )
        return {}


def _best_uniform(encoding: Encoding, grid: list[float]):
    """Genes of the lowest uniform ratio whose estimate fits (fixed mode's answer), or None."""
    for ratio in grid:
        genes = encoding.uniform(ratio)
        if encoding.usage(genes).feasible:
            return genes
    return None


def _positive_real(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ParameterError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def _non_negative_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ParameterError(f"{name} must be an integer >= 0, got {value!r}")
    return int(value)


def _stable(value):
    """A value as it should enter the fingerprint: callables by qualified name, profiles by their fields."""
    if callable(value) and not isinstance(value, type):
        return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
    if isinstance(value, HardwareProfile):
        return [value.ram, value.flash, value.macs]
    if isinstance(value, list | tuple):
        return [_stable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _stable(v) for k, v in value.items()}
    return value
