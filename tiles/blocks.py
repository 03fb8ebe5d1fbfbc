"""Blocks of tiles read with one windowed read each, then cut into tiles in memory.

Tiles of one scale overlap (half a tile by default), so reading them one by one pays GDAL's
per-call cost, the mask and stretch arithmetic and a Python round trip per tile, on pixels
shared with three neighbours. A block is the bounding window of the tiles of one scale that
start within one square cell; it is read once with ``out_shape`` at model resolution, which
is the only resampling (GDAL serves a coarse scale from the overview of its factor, as it
does for a single tile), and every tile is a slice of it. A tile whose start does not fall
on a whole model pixel (an odd edge offset at a coarse scale, a metric tile size) or whose
window is clipped to a short scene side gets a block of its own, read exactly as
``TileReader.read`` reads it.

Cells are sized from a memory budget and rounded to the file's internal blocks, so a block
decodes whole JPEG blocks, and memory stays fixed whatever the scene size.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

READER_MB = 256  # default of the SCENESEEK_READER_MB setting
# Bytes per model pixel of one block read: bands as read (16-bit) and as float32 while
# stretched, the mask as read and as a fraction, the masked RGB; tiles come on top.
PIXEL_BYTES = 48
RGB_BYTES = 3


@dataclass(frozen=True)
class Block:
    """Tiles of one scale read together.

    Attributes:
        window: (col_off, row_off, width, height) in scene pixels.
        out_shape: (rows, cols) of the block at model resolution.
        members: Positions of the tiles in the windows the block was planned from.
        offsets: (n, 2) (row, col) of each tile in the block, in model pixels.
    """

    window: tuple[int, int, int, int]
    out_shape: tuple[int, int]
    members: NDArray[np.int64]
    offsets: NDArray[np.int64]


def on_grid(windows: NDArray[np.integer], out_size: int, align: int = 1) -> NDArray[np.bool_]:
    """Which tiles can be cut from a block: square, starting on a multiple of ``align``.

    ``align`` is in model pixels: 1 for pixel slices, 32 for cells of the coarsest feature
    map (``core.ingest.embed.shared``).
    """
    square = windows[:, 2] == windows[:, 3]
    starts = windows[:, :2] * out_size
    return square & np.all(starts % (np.maximum(windows[:, 2:3], 1) * align) == 0, axis=1)


def _single(windows: NDArray[np.integer], member: int, out_size: int) -> Block:
    col, row, width, height = (int(v) for v in windows[member])
    return Block(
        (col, row, width, height),
        (out_size, out_size),
        np.array([member]),
        np.zeros((1, 2), np.int64),
    )


def plan_blocks(
    windows: NDArray[np.integer], out_size: int, block_px: int, align: int = 1
) -> list[Block]:
    """Group the tiles of each scale into blocks; every tile lands in exactly one.

    Args:
        windows: (n, 4) col_off, row_off, width, height of the tiles.
        out_size: Side of a tile at model resolution.
        block_px: Side of a grouping cell in model pixels; a block reaches one tile past it.
        align: Tile starts must be multiples of this many model pixels (see ``on_grid``).

    Returns:
        The blocks; tiles off the grid have a block of their own.
    """
    shared = on_grid(windows, out_size, align)
    blocks = [_single(windows, int(m), out_size) for m in np.nonzero(~shared)[0]]
    for size in np.unique(windows[shared, 2]):
        (members,) = np.nonzero(shared & (windows[:, 2] == size))
        starts = windows[members, :2] * out_size // size
        cells = starts // block_px
        keys = cells[:, 1] * (cells[:, 0].max() + 1) + cells[:, 0]
        order = np.argsort(keys, kind="stable")
        _, firsts = np.unique(keys[order], return_index=True)
        for pick in np.split(order, firsts[1:]):
            group, first = members[pick], starts[pick].min(axis=0)
            extent = starts[pick].max(axis=0) + out_size - first
            scene_first = windows[group, :2].min(axis=0)
            scene_extent = windows[group, :2].max(axis=0) + size - scene_first
            blocks.append(
                Block(
                    (*(int(v) for v in scene_first), *(int(v) for v in scene_extent)),
                    (int(extent[1]), int(extent[0])),
                    group,
                    (starts[pick] - first)[:, ::-1].copy(),
                )
            )
    return blocks


def budget_block_px(budget_bytes: int, out_size: int, coverage: float, unit: int) -> int:
    """Cell side (model pixels) whose block and cut tiles fit ``budget_bytes``.

    Args:
        budget_bytes: Memory one block may take while read and cut.
        out_size: Side of a tile at model resolution.
        coverage: How many tiles cover a pixel on average (4 at half-tile overlap).
        unit: The file's internal block side: cells are whole multiples of it when they can be.

    Returns:
        The side, at least one tile.
    """
    per_pixel = PIXEL_BYTES + RGB_BYTES * coverage
    side = int(math.sqrt(budget_bytes / per_pixel)) - out_size  # a block reaches one tile past
    if side >= unit:
        return side // unit * unit
    return max(out_size, side)


def inexact_overview_sizes(
    sizes: Sequence[int], out_size: int, shape: tuple[int, int], overviews: Sequence[int]
) -> set[int]:
    """Tile sizes GDAL serves from an overview that is not an exact fraction of the scene.

    On a side not divisible by the overview's factor, the overview's pixels straddle the
    scene's, and GDAL resamples every read at a sub-pixel phase that depends on where the
    read starts: a tile cut from a block would differ from the tile read alone, so these
    sizes are read tile by tile.
    """
    return {
        size
        for size in sizes
        if any(o <= size / out_size and (shape[0] % o or shape[1] % o) for o in overviews)
    }


def blocks_within_budget(
    windows: NDArray[np.integer],
    out_size: int,
    budget_bytes: int,
    unit: int,
    per_tile: Collection[int] = (),
) -> list[Block]:
    """``plan_blocks`` at pixel alignment with each scale's cell sized by ``budget_bytes``.

    Args:
        windows: (n, 4) col_off, row_off, width, height of the tiles.
        out_size: Side of a tile at model resolution.
        budget_bytes: Memory one block may take while read and cut.
        unit: The file's internal block side in pixels.
        per_tile: Tile sizes read one tile per block (see ``inexact_overview_sizes``).

    Returns:
        The blocks, members indexing ``windows``.
    """
    blocks: list[Block] = []
    for size in np.unique(windows[:, 2]):
        (members,) = np.nonzero(windows[:, 2] == size)
        if size in per_tile:
            blocks.extend(_single(windows, int(m), out_size) for m in members)
            continue
        scale = windows[members]
        area = np.prod(scale[:, :2].max(axis=0) + size - scale[:, :2].min(axis=0))
        coverage = max(1.0, len(members) * float(size) ** 2 / float(area))
        block_px = budget_block_px(budget_bytes, out_size, coverage, unit)
        for block in plan_blocks(scale, out_size, block_px):
            blocks.append(replace(block, members=members[block.members]))
    return blocks


def cut_tiles(
    pixels: NDArray[np.uint8],
    offsets: NDArray[np.integer],
    out_size: int,
    out: NDArray[np.uint8] | None = None,
) -> NDArray[np.uint8]:
    """The (n, out_size, out_size, 3) tiles at ``offsets`` of a block's (rows, cols, 3) pixels.

    ``out`` receives them when given (e.g. a reused buffer: fresh pages cost as much to
    fault in as the copy itself).
    """
    shape = (len(offsets), out_size, out_size, pixels.shape[2])
    out = np.empty(shape, dtype=pixels.dtype) if out is None else out
    for i, (row, col) in enumerate(offsets):
        out[i] = pixels[row : row + out_size, col : col + out_size]
    return out
