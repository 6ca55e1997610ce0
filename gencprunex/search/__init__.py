"""The genetic search behind :class:`~gencprunex.GeneticPruner`: encoding, evaluators, pygmo problem, driver."""
