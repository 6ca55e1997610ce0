"""One copy of a model whose pruned channels are zeroed by masks: many plans scored without a rebuild.

Every tensor whose channels shrink under some plan is multiplied by a 0/1 mask variable right after the
operation that makes it. Between a producer and its consumers channels only pass through per-channel layers,
merges and concatenations, so a dropped channel reaches nothing but zeroed rows and the masked copy computes
exactly what the pruned model computes. Changing the plan assigns the masks; the compiled functions are traced
once.

BatchNorm recalibration runs one forward pass over a fixed calibration batch in which every BatchNormalization
normalises with that batch's own statistics and stores them as its moving mean and variance. Afterwards an
inference pass over the same batch reproduces those activations exactly: the statistics are self-consistent.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from ..graph import LayerGraph
from ..surgery import prune_model
from ..walk import run_graph


class MaskedModel:
    """A private copy of ``model`` with a 0/1 mask after every operation whose output channels can shrink.

    ``graph`` is the :class:`LayerGraph` of ``model`` (its ``ignore`` is kept). The input model is only read.
    """

    def __init__(self, model, graph: LayerGraph | None = None) -> None:
        graph = graph if graph is not None else LayerGraph(model)
        self.copy = prune_model(model, graph, {})
        self.graph = LayerGraph(self.copy, ignore=graph.ignore)
        prunable = {g.index for g in self.graph.prunable}
        calls_per_layer: dict[int, int] = {}
        for call in self.graph.nodes:
            calls_per_layer[id(call.layer)] = calls_per_layer.get(id(call.layer), 0) + 1
        self._masks: dict[int, tf.Variable] = {}
        self._mask_keys: dict[int, int] = {}
        for call in self.graph.nodes:
            if len(call.outputs) != 1 or calls_per_layer[id(call.layer)] != 1:
                continue
            key = call.outputs[0]
            layout = self.graph.layout(key)
            if not prunable.intersection(layout.groups) or layout.width == 0:
                continue
            self._masks[id(call.layer)] = tf.Variable(tf.ones([layout.width]), trainable=False)
            self._mask_keys[id(call.layer)] = key
        self._norms = [c.layer for c in self.graph.nodes if isinstance(c.layer, keras.layers.BatchNormalization)]
        self._calibrate_fn = tf.function(self._calibrate_pass, reduce_retracing=True)
        self._predict_fn = tf.function(self._inference_pass, reduce_retracing=True)

    # plans ------------------------------------------------------------------------------------
    def set_plan(self, plan: dict[str, np.ndarray]) -> None:
        """Keep only ``plan[group name]`` channels of each group named (every channel of the others)."""
        kept = {self.graph.group(name).index: np.asarray(rows) for name, rows in plan.items()}
        for layer_id, variable in self._masks.items():
            layout = self.graph.layout(self._mask_keys[layer_id])
            mask = np.zeros(layout.width, dtype=np.float32)
            mask[layout.kept_rows(kept)] = 1.0
            variable.assign(mask)

    # passes -----------------------------------------------------------------------------------
    def recalibrate(self, x: np.ndarray) -> None:
        """Recompute every BatchNormalization's moving statistics from the batch ``x``, under the current masks."""
        if self._norms:
            self._calibrate_fn(tf.convert_to_tensor(x))

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Outputs of the masked copy for ``x``, in inference mode."""
        parts = [self._predict_fn(tf.convert_to_tensor(x[i : i + batch_size])) for i in range(0, len(x), batch_size)]
        return np.concatenate([np.asarray(p) for p in parts])

    def _calibrate_pass(self, x):
        return run_graph(self.copy, x, lambda op: self._wrap(op, calibrate=True))

    def _inference_pass(self, x):
        return run_graph(self.copy, x, lambda op: self._wrap(op, calibrate=False))

    def _wrap(self, op, calibrate: bool):
        mask = self._masks.get(id(op))
        batch_stats = calibrate and isinstance(op, keras.layers.BatchNormalization)

        def call(*args, **kwargs):
            if "training" in getattr(op, "_call_context_args", ()):
                kwargs["training"] = False  # Dropout, noise and augmentation layers are identities here
            outputs = _normalise_with_batch_stats(op, args[0]) if batch_stats else op(*args, **kwargs)
            if mask is not None:
                outputs = outputs * tf.cast(mask, outputs.dtype)
            return outputs

        return call


def _normalise_with_batch_stats(layer, x):
    """``layer`` (a BatchNormalization) applied with the statistics of ``x``, which it stores as its moving ones."""
    rank = len(x.shape)
    axis = layer.axis % rank
    reduce = [i for i in range(rank) if i != axis]
    values = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(values, reduce)
    layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
    layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))
    scale = tf.math.rsqrt(variance + layer.epsilon)
    if layer.scale:
        scale = scale * tf.cast(layer.gamma, tf.float32)
    shift = -mean * scale
    if layer.center:
        shift = shift + tf.cast(layer.beta, tf.float32)
    shape = [1] * rank
    shape[axis] = -1
    return tf.cast(values * tf.reshape(scale, shape) + tf.reshape(shift, shape), x.dtype)
