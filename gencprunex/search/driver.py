"""The evolution loop: seed a population, evolve one generation at a time, checkpoint after each.

Evolving one generation per ``evolve`` call and pickling the population and algorithm after each makes a resumed
search identical to one never interrupted (pygmo's random states travel with them).
"""

from __future__ import annotations

import time
import uuid

import numpy as np

from . import checkpoint as checkpoints
from .encoding import Encoding
from .problem import PruningProblem, SearchContext, register, unregister
from .progress import Progress

ALGORITHMS = ("nsga2", "gaco")


def make_algorithm(name: str, population: int, genes: int, seed: int):
    """A pygmo algorithm that evolves one generation per call and evaluates it with ``batch_fitness``."""
    import pygmo as pg

    if name == "nsga2":
        uda = pg.nsga2(gen=1, cr=0.9, eta_c=10.0, m=min(1.0, 1.5 / max(genes, 1)), eta_m=10.0, seed=seed)
    else:
        uda = pg.gaco(gen=1, ker=population, q=1.0, oracle=0.0, acc=0.01, threshold=1, n_gen_mark=7, seed=seed)
    uda.set_bfe(pg.bfe(pg.member_bfe()))
    return pg.algorithm(uda)


class Search:
    """One search: an encoding, a context that scores candidates, the algorithm and its checkpoint."""

    def __init__(
        self,
        encoding: Encoding,
        ctx: SearchContext,
        algorithm: str,
        population: int,
        generations: int,
        seed: int,
        uniform_ratios: tuple[float, ...],
        fingerprint: str,
        checkpoint: str | None,
        progress: Progress,
    ) -> None:
        self.encoding = encoding
        self.ctx = ctx
        self.algorithm = algorithm
        self.population = population
        self.generations = generations
        self.seed = seed
        self.uniform_ratios = uniform_ratios
        self.fingerprint = fingerprint
        self.checkpoint = checkpoint
        self.progress = progress

    def resume_or_start(self) -> checkpoints.SearchState:
        """The saved state when the checkpoint exists (its evaluations restored), else generation 0."""
        state = checkpoints.load(self.checkpoint, self.fingerprint) if self.checkpoint else None
        if state is not None:
            register(state.token, self.ctx)
            self.ctx.scores = dict(state.scores)
            self.ctx.order = list(state.order)
            self.ctx.evaluations = state.evaluations
            self.ctx.eval_seconds = state.eval_seconds
            self.progress.message(
                f"resuming from '{self.checkpoint}' after generation {state.generation} "
                f"({state.evaluations} candidates scored)"
            )
            for entry in state.history:  # the generations already done, once (a fresh start shows its own)
                self.progress.update(entry["generation"], entry)
            return state
        return self._start()

    def _start(self) -> checkpoints.SearchState:
        import pygmo as pg

        started = time.perf_counter()
        token = uuid.uuid4().hex
        register(token, self.ctx)
        try:
            problem = pg.problem(self._problem(token))
            seeds = self.encoding.initial_population(self.population, self.uniform_ratios, self.seed)
            fitness = self.ctx.batch_fitness(np.asarray(seeds, dtype=float).ravel(), self.algorithm)
            fitness = fitness.reshape(len(seeds), -1)
            population = pg.population(problem, 0, seed=self.seed)
            for genes, f in zip(seeds, fitness, strict=True):
                population.push_back(np.asarray(genes, dtype=float), f)
            algorithm = make_algorithm(self.algorithm, self.population, len(self.encoding.upper), self.seed)
            state = checkpoints.SearchState(self.fingerprint, token, 0, population, algorithm)
            self._after_generation(state, time.perf_counter() - started)
        except BaseException:
            unregister(token)  # the caller never sees the token: do not leave the context (model, data) behind
            raise
        return state

    def _problem(self, token: str) -> PruningProblem:
        return PruningProblem(token, self.encoding.upper, len(self.encoding.budgets), self.algorithm, self.ctx.spec)

    def run(self, state: checkpoints.SearchState) -> checkpoints.SearchState:
        """Evolve from ``state`` up to ``generations``, checkpointing after every generation."""
        while state.generation < self.generations:
            started = time.perf_counter()
            state.population = state.algorithm.evolve(state.population)
            state.generation += 1
            self._after_generation(state, time.perf_counter() - started)
        self.progress.close()
        return state

    def _after_generation(self, state: checkpoints.SearchState, seconds: float) -> None:
        entry = self._history_entry(state, seconds)
        state.history.append(entry)
        state.scores = dict(self.ctx.scores)
        state.order = list(self.ctx.order)
        state.evaluations = self.ctx.evaluations
        state.eval_seconds = self.ctx.eval_seconds
        state.search_seconds += seconds
        if self.checkpoint:
            checkpoints.save(self.checkpoint, state)
        self.progress.update(state.generation, entry)

    def _history_entry(self, state: checkpoints.SearchState, seconds: float) -> dict:
        genes = [self.encoding.clip(x) for x in state.population.get_x()]
        feasible = [g for g in genes if self.encoding.usage(g).feasible]
        scores = [self.ctx.scores[g] for g in feasible if g in self.ctx.scores]
        entry = {
            "generation": state.generation,
            "best": None,
            "mean": float(np.mean(scores)) if scores else None,
            "feasible": len(feasible) / len(genes) if genes else 0.0,
            "evaluations": self.ctx.evaluations,
            "seconds": seconds,
        }
        best = best_candidate(self.encoding, self.ctx.scores)
        if best is not None:
            usage = self.encoding.usage(best)
            entry.update(best=self.ctx.scores[best], best_ram=usage.ram, best_flash=usage.flash, best_macs=usage.macs)
        return entry


def ranked(encoding: Encoding, scores: dict) -> list[tuple[int, ...]]:
    """Scored candidates, best first: higher score, then smaller worst budget use, then smaller genes."""
    return sorted(scores, key=lambda g: (-scores[g], encoding.usage(g).worst, g))


def best_candidate(encoding: Encoding, scores: dict):
    """The best scored candidate, or None when nothing has been scored."""
    order = ranked(encoding, scores)
    return order[0] if order else None


def pareto_front(encoding: Encoding, scores: dict) -> list[tuple[int, ...]]:
    """Scored candidates no other one beats on score, RAM, Flash and MACs at once (best score first)."""
    candidates = ranked(encoding, scores)
    points = np.array(
        [[-scores[g], *(lambda u: (u.ram, u.flash, u.macs))(encoding.usage(g))] for g in candidates], dtype=float
    ).reshape(-1, 4)
    front = []
    for i, genes in enumerate(candidates):
        others = np.delete(points, i, axis=0)
        dominated = np.any(np.all(others <= points[i], axis=1) & np.any(others < points[i], axis=1))
        if not dominated:
            front.append(genes)
    return front
