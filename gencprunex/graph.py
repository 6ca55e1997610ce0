"""LayerGraph: a Keras model seen as layers in topological order and the channel groups between them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from .errors import ModelError, UnsupportedLayerError
from .layout import Layout, channel_width
from .rules import Rule, Unsupported, rule_for
from .walk import FlatModel, LayerCall, flatten_model


@dataclass(eq=False)
class ChannelGroup:
    """A set of channels that must be removed together.

    ``producers`` create the channels (their output axis is sliced), ``layers`` carry them
    channel by channel (BatchNormalization, depthwise convolutions, activations, pooling, Flatten...),
    ``consumers`` read them (their input axis is sliced). Outputs joined by ``Add``, ``Multiply``
    and the other merges (residual shortcuts, squeeze-and-excitation gates) form one group with
    several producers, which all keep the same channels; a ``Concatenate`` joins nothing, its
    consumers read each input group at its offset. ``prunable`` is False when the channels reach a
    model output or cross a layer that cannot be mapped; ``reason`` then says why.
    """

    name: str
    size: int
    producers: list[str]
    consumers: list[str]
    layers: list[str]
    prunable: bool
    reason: str | None
    blockers: list[tuple[str, str, str]] = field(default_factory=list, repr=False)
    index: int = field(default=-1, repr=False)
    blocked_only_by_unsupported: bool = field(default=False, repr=False)
    _layer_objects: dict = field(default_factory=dict, repr=False)
    _output_rows: dict = field(default_factory=dict, repr=False)

    def get_layer(self, name: str):
        """The Keras layer object of a producer, consumer or carrier of this group."""
        try:
            return self._layer_objects[name]
        except KeyError:
            raise KeyError(f"layer '{name}' is not part of group '{self.name}'") from None

    def channel_rows(self, name: str) -> np.ndarray | None:
        """Where this group's channels sit on the channel axis of carrier ``name``'s output.

        ``arange(size)`` for a layer that carries only this group (BatchNormalization, ReLU); an
        offset range after a concatenation (the first copy if it holds the group twice); None when
        the channels are spread out there (Flatten, depthwise multiplier).
        """
        if name not in self.layers:
            raise KeyError(f"layer '{name}' does not carry group '{self.name}'")
        return self._output_rows.get(name)


class _Builder:
    """Union-find over groups plus role bookkeeping, driven by the layer rules."""

    def __init__(self, flat: FlatModel, ignore: set[str]) -> None:
        self.flat = flat
        self.ignore = ignore
        self.parent: list[int] = []
        self.sizes: list[int] = []
        self.names: list[str] = []
        self.reasons: list[list[str]] = []
        self.blockers: list[list[tuple[str, str, str]]] = []
        self.roles: list[dict[str, list[LayerCall]]] = []

    def _new(self, name: str, size: int) -> int:
        self.parent.append(len(self.parent))
        self.sizes.append(int(size))
        self.names.append(name)
        self.reasons.append([])
        self.blockers.append([])
        self.roles.append({"producers": [], "layers": [], "consumers": []})
        return len(self.parent) - 1

    def find(self, group: int) -> int:
        while self.parent[group] != group:
            self.parent[group] = self.parent[self.parent[group]]
            group = self.parent[group]
        return group

    # Builder protocol used by rules.py
    def new_group(self, call: LayerCall, output_index: int, size: int) -> int:
        name = call.name if len(call.outputs) == 1 else f"{call.name}:{output_index}"
        group = self._new(name, size)
        self.roles[group]["producers"].append(call)
        return group

    def input_group(self, name: str, size: int) -> int:
        group = self._new(name, size)
        self.reasons[group].append("model input")
        return group

    def carry(self, call: LayerCall, groups: list[int]) -> None:
        for g in groups:
            self.roles[self.find(g)]["layers"].append(call)

    def consume(self, call: LayerCall, groups: list[int]) -> None:
        for g in groups:
            self.roles[self.find(g)]["consumers"].append(call)

    def freeze(self, groups: Iterable[int], reason: str) -> None:
        for g in groups:
            self.reasons[self.find(g)].append(reason)

    def block(self, call: LayerCall, groups: list[int], why: str) -> None:
        blocker = (call.name, call.class_name, why)
        if _is_ignored(call, self.ignore):
            self.freeze(groups, f"{_blocker_reason(*blocker)} (in ignore=)")
            return
        for g in groups:
            self.blockers[self.find(g)].append(blocker)

    def union(self, groups: list[int], via: str | None = None) -> int:
        """Join ``groups`` into one; ``via`` (the joining layer) is named in the reasons they bring."""
        roots = sorted({self.find(g) for g in groups})
        root = roots[0]
        if via is not None and len(roots) > 1:
            for r in roots:
                self.reasons[r] = [_joined_reason(reason, self.names[r], via) for reason in self.reasons[r]]
        for other in roots[1:]:
            if self.sizes[other] != self.sizes[root]:  # pragma: no cover - Keras checks shapes first
                raise ModelError(
                    f"cannot join groups '{self.names[root]}' and '{self.names[other]}' of different sizes"
                )
            self.parent[other] = root
            self.reasons[root].extend(self.reasons[other])
            self.blockers[root].extend(self.blockers[other])
            for role, calls in self.roles[other].items():
                self.roles[root][role].extend(calls)
        return root

    def shape(self, key: int) -> tuple:
        return self.flat.tensors[key].shape


class LayerGraph:
    """A Keras 3 model as layer calls in topological order and the channel groups between them.

    Parameters
    ----------
    model:
        A built Sequential or Functional ``keras.Model``; nested Functional/Sequential sub-models
        (``keras.applications`` backbones) are looked through.
    ignore:
        Layer names whose output channels must stay whole. Naming an unsupported layer here
        leaves the channels around it unpruned instead of raising.

    Attributes
    ----------
    groups:
        Every :class:`ChannelGroup`, in topological order.
    prunable:
        The prunable groups, in the order a list of ratios refers to.
    nodes:
        The layer calls in execution order (``.name``, ``.layer``, ``.class_name``, ``.rule``).
    """

    def __init__(self, model, ignore: Iterable[str] = ()) -> None:
        self.model = model
        self.flat = flatten_model(model)
        self.nodes: list[LayerCall] = self.flat.calls
        self.ignore = tuple(ignore)
        self._check_ignore()
        builder = _Builder(self.flat, set(self.ignore))
        self._layouts = self._propagate(builder)
        self.groups = self._make_groups(builder, self._layouts)
        self.prunable = [g for g in self.groups if g.prunable]
        self._by_name = {g.name: g for g in self.groups}
        self._group_of_layer = self._index_layers()

    # construction -------------------------------------------------------------------------
    def _check_ignore(self) -> None:
        names = {c.name for c in self.nodes} | {c.layer.name for c in self.nodes}
        for name in self.ignore:
            if name not in names:
                close = difflib.get_close_matches(name, sorted(names), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ModelError(f"ignore= names layer '{name}', which is not in model '{self.model.name}'{hint}")

    def _propagate(self, builder: _Builder) -> dict[int, Layout]:
        layouts: dict[int, Layout] = {}
        for key, name in zip(self.flat.inputs, self.flat.input_names, strict=True):
            size = channel_width(self.flat.tensors[key].shape)
            layouts[key] = Layout.single(builder.input_group(name, size), size)
        calls_per_layer: dict[int, int] = {}
        for call in self.nodes:
            calls_per_layer[id(call.layer)] = calls_per_layer.get(id(call.layer), 0) + 1
        for call in self.nodes:
            call.rule = rule_for(call.layer)
            in_layouts = [layouts[k] for k in call.inputs]
            if not in_layouts:  # a layer that makes tensors from nothing: nothing to follow
                call.rule = Unsupported("it has no tensor inputs")
            out_layouts = call.rule.propagate(builder, call, in_layouts)
            for key, layout in zip(call.outputs, out_layouts, strict=True):
                layouts[key] = layout
            if _is_ignored(call, self.ignore):
                builder.freeze([g for lo in out_layouts for g in lo.groups], f"layer '{call.name}' is in ignore=")
            count = calls_per_layer[id(call.layer)]
            if count > 1:
                touched = [g for lo in in_layouts + out_layouts for g in lo.groups]
                builder.freeze(touched, f"layer '{call.name}' is shared (called {count} times)")
        producer_of = {k: c for c in self.nodes for k in c.outputs}
        for key in self.flat.outputs:
            source = producer_of.get(key)
            where = f"'{source.name}'" if source is not None else "(a model input)"
            builder.freeze(layouts[key].groups, f"reaches a model output {where}")
        return {key: layout.renamed(builder.find) for key, layout in layouts.items()}

    def _make_groups(self, builder: _Builder, layouts: dict[int, Layout]) -> list[ChannelGroup]:
        groups = []
        for gid in range(len(builder.parent)):
            if builder.find(gid) != gid:
                continue
            roles = {role: _unique(calls) for role, calls in builder.roles[gid].items()}
            frozen = _unique(builder.reasons[gid])
            if not frozen and builder.sizes[gid] <= 1:
                frozen = ["has a single channel"]
            reasons = frozen + _unique(_blocker_reason(*b) for b in builder.blockers[gid])
            objects = {c.name: c.layer for calls in roles.values() for c in calls}
            rows = {c.name: layouts[c.outputs[0]].channel_rows(gid) for c in roles["layers"] if c.outputs}
            groups.append(
                ChannelGroup(
                    name=builder.names[gid],
                    size=builder.sizes[gid],
                    producers=[c.name for c in roles["producers"]],
                    consumers=[c.name for c in roles["consumers"]],
                    layers=[c.name for c in roles["layers"]],
                    prunable=not reasons,
                    reason="; ".join(reasons) if reasons else None,
                    blockers=_unique(builder.blockers[gid]),
                    index=gid,
                    blocked_only_by_unsupported=not frozen and bool(builder.blockers[gid]),
                    _layer_objects=objects,
                    _output_rows=rows,
                )
            )
        return groups

    def _index_layers(self) -> dict[str, ChannelGroup]:
        """Map each layer name to the group its output channels belong to (plain layouts only)."""
        by_index = {g.index: g for g in self.groups}
        index: dict[str, ChannelGroup] = {}
        for call in self.nodes:
            if len(call.outputs) != 1:
                continue
            groups = self._layouts[call.outputs[0]].groups
            if len(groups) == 1:
                index.setdefault(call.name, by_index[groups[0]])
        return index

    # queries ------------------------------------------------------------------------------
    def group(self, name: str) -> ChannelGroup:
        """The group called ``name``, or the group a layer called ``name`` outputs."""
        group = self._by_name.get(name) or self._group_of_layer.get(name)
        if group is None and len(self.output_groups(name)) > 1:
            names = ", ".join(g.name for g in self.output_groups(name))
            raise KeyError(f"layer '{name}' outputs the channels of several groups ({names}); name one of them")
        if group is None:
            close = difflib.get_close_matches(name, [g.name for g in self.groups], n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"no group or layer named '{name}' in model '{self.model.name}'{hint}")
        return group

    def output_groups(self, name: str) -> list[ChannelGroup]:
        """The groups whose channels layer call ``name`` outputs, in order of appearance ([] if unknown)."""
        by_index = {g.index: g for g in self.groups}
        for call in self.nodes:
            if call.name == name and len(call.outputs) == 1:
                return [by_index[g] for g in self._layouts[call.outputs[0]].groups]
        return []

    def layout(self, tensor_key: int) -> Layout:
        """Channel layout of one tensor of the flattened graph."""
        return self._layouts[tensor_key]

    def check_supported(self) -> None:
        """Raise :class:`UnsupportedLayerError` if an unmapped layer blocks an otherwise prunable group."""
        for group in self.groups:
            if group.blocked_only_by_unsupported:
                name, class_name, why = group.blockers[0]
                raise UnsupportedLayerError(
                    f"layer '{name}' ({class_name}) sits in the channel path of group '{group.name}' and "
                    f"gencprunex cannot prune through it ({why}); pass ignore=['{name}'] to leave those "
                    f"channels unpruned, or file an issue asking for {class_name} support"
                )

    def kept_rows(self, tensor_key: int, kept: dict[int, np.ndarray]) -> np.ndarray:
        """Surviving positions of a tensor's last axis when group index ``g`` keeps ``kept[g]``."""
        return self._layouts[tensor_key].kept_rows(kept)

    def summary(self) -> str:
        """A human-readable table of the channel groups."""
        header = ("group", "size", "prunable", "producers", "consumers / reason")
        rows = []
        for g in self.groups:
            detail = ", ".join(g.consumers) or "-"
            if not g.prunable:
                detail = g.reason or ""
            rows.append((g.name, str(g.size), "yes" if g.prunable else "no", ", ".join(g.producers) or "-", detail))
        widths = [max(len(r[i]) for r in [*rows, header]) for i in range(4)]
        lines = [
            f"LayerGraph of '{self.model.name}': {len(self.nodes)} layer calls, "
            f"{len(self.groups)} channel groups, {len(self.prunable)} prunable"
        ]
        for row in [header, *rows]:
            cells = [row[0].ljust(widths[0]), row[1].rjust(widths[1]), row[2].ljust(widths[2]), row[3].ljust(widths[3])]
            lines.append("  ".join([*cells, row[4]]).rstrip())
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"LayerGraph(model='{self.model.name}', groups={len(self.groups)}, prunable={len(self.prunable)})"


def _is_ignored(call: LayerCall, ignore) -> bool:
    return call.name in ignore or call.layer.name in ignore


def _blocker_reason(name: str, class_name: str, why: str) -> str:
    return f"crosses unsupported layer '{name}' ({class_name}): {why}"


def _joined_reason(reason: str, name: str, via: str) -> str:
    """A reason group ``name`` had before ``via`` joined it to others, phrased for the joined group."""
    if reason.startswith("joined "):
        return reason
    return f"joined by {via} to '{name}', which is not prunable: {reason}"


def _unique(items: Iterable) -> list:
    return list(dict.fromkeys(items))


__all__ = ["ChannelGroup", "LayerGraph", "Rule"]
