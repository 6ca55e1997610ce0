"""Channel layouts: which channel group each position of a tensor's last axis belongs to.

A tensor's last axis is a sequence of blocks; a block is ``repeat`` copies of a run of segments;
a segment is ``size`` channels of one group, each channel spread over ``expand`` consecutive
positions. This covers every mapping Keras' channels-last layers make:

* a chain: one block, one segment (``row = c``);
* ``Concatenate`` on the channel axis: several segments (``row = offset + c``);
* ``Flatten`` / trailing-axis ``Reshape``: ``repeat`` = spatial positions (``row = p·C + c``);
* ``DepthwiseConv`` with ``depth_multiplier`` m: ``expand`` = m (``row = c·m + j``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np


def channel_width(shape: tuple) -> int:
    """Size of the channel (last) axis of a tensor shape with batch dimension, 0 if unknown."""
    return int(shape[-1]) if len(shape) >= 2 and shape[-1] is not None else 0


@dataclass(frozen=True)
class Segment:
    """``size`` channels of group ``group``, each spread over ``expand`` consecutive positions."""

    group: int
    size: int
    expand: int = 1

    @property
    def width(self) -> int:
        return self.size * self.expand


@dataclass(frozen=True)
class Block:
    """``repeat`` back-to-back copies of a run of segments."""

    segments: tuple[Segment, ...]
    repeat: int = 1

    @property
    def inner_width(self) -> int:
        return sum(s.width for s in self.segments)

    @property
    def width(self) -> int:
        return self.repeat * self.inner_width


@dataclass(frozen=True)
class Layout:
    """The channel layout of a tensor's last axis."""

    blocks: tuple[Block, ...]

    @classmethod
    def single(cls, group: int, size: int) -> Layout:
        return cls((Block((Segment(group, size),)),))

    @property
    def width(self) -> int:
        return sum(b.width for b in self.blocks)

    @property
    def groups(self) -> list[int]:
        """Groups appearing in this layout, first appearance first, without duplicates."""
        seen: dict[int, None] = {}
        for block in self.blocks:
            for seg in block.segments:
                seen.setdefault(seg.group, None)
        return list(seen)

    def is_plain(self) -> bool:
        """One group, one channel per position: the layout of an ordinary feature map."""
        return (
            len(self.blocks) == 1
            and self.blocks[0].repeat == 1
            and len(self.blocks[0].segments) == 1
            and self.blocks[0].segments[0].expand == 1
        )

    def repeated(self, times: int) -> Layout:
        """The layout after merging ``times`` trailing positions into the channel axis (Flatten)."""
        if times == 1:
            return self
        if len(self.blocks) == 1:
            block = self.blocks[0]
            return Layout((Block(block.segments, block.repeat * times),))
        return Layout(self.blocks * times)

    def expanded(self, multiplier: int) -> Layout:
        """The layout after a depthwise convolution with ``depth_multiplier`` = ``multiplier``."""
        if multiplier == 1:
            return self
        return Layout(
            tuple(
                Block(tuple(Segment(s.group, s.size, s.expand * multiplier) for s in b.segments), b.repeat)
                for b in self.blocks
            )
        )

    def concatenated(self, other: Layout) -> Layout:
        """The layout of ``concat([self, other], axis=-1)``."""
        if (
            len(self.blocks) == 1
            and len(other.blocks) == 1
            and self.blocks[0].repeat == 1
            and other.blocks[0].repeat == 1
        ):
            return Layout((Block(self.blocks[0].segments + other.blocks[0].segments),))
        return Layout(self.blocks + other.blocks)

    def renamed(self, find: Callable[[int], int]) -> Layout:
        """The same layout with every group id replaced by ``find(id)``."""
        return Layout(
            tuple(
                Block(tuple(Segment(find(s.group), s.size, s.expand) for s in b.segments), b.repeat)
                for b in self.blocks
            )
        )

    def channel_rows(self, group: int) -> np.ndarray | None:
        """Positions of channels 0…size−1 of ``group`` where it first appears, one position per channel.

        None when the group is absent, spread (depthwise ``expand``) or repeated (Flatten) there.
        """
        offset = 0
        for block in self.blocks:
            inner_offset = 0
            for seg in block.segments:
                if seg.group == group:
                    if seg.expand != 1 or block.repeat != 1:
                        return None
                    return offset + inner_offset + np.arange(seg.size, dtype=np.int64)
                inner_offset += seg.width
            offset += block.width
        return None

    def kept_rows(self, kept: Mapping[int, np.ndarray]) -> np.ndarray:
        """Positions of the last axis that survive when group ``g`` keeps channels ``kept[g]``.

        Groups missing from ``kept`` keep every channel.
        """
        parts = []
        offset = 0
        for block in self.blocks:
            inner = []
            inner_offset = 0
            for seg in block.segments:
                channels = kept.get(seg.group)
                if channels is None:
                    channels = np.arange(seg.size)
                rows = (np.asarray(channels, dtype=np.int64)[:, None] * seg.expand + np.arange(seg.expand)).ravel()
                inner.append(inner_offset + rows)
                inner_offset += seg.width
            inner_rows = np.concatenate(inner) if inner else np.zeros(0, dtype=np.int64)
            starts = offset + np.arange(block.repeat, dtype=np.int64) * block.inner_width
            parts.append((starts[:, None] + inner_rows[None, :]).ravel())
            offset += block.width
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def kept_width(self, kept_sizes: Mapping[int, int]) -> int:
        """Width of the last axis when group ``g`` keeps ``kept_sizes[g]`` channels (others all)."""
        return sum(b.repeat * sum(kept_sizes.get(s.group, s.size) * s.expand for s in b.segments) for b in self.blocks)
