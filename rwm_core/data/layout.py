"""Column layout of a state/action/contact/termination table (SPEC §1).

One row per control step. The layout is task data, not code: a task instantiates :class:`ColumnLayout` with its
block widths and every consumer (validation, windows, model dims, simulator, plots) reads the slices from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ColumnLayout:
    """Named column blocks of one row; blocks are contiguous and in table order."""

    blocks: tuple[tuple[str, int, str], ...]  # (name, width, unit)
    state_blocks: tuple[str, ...]
    action_block: str
    contact_blocks: tuple[str, ...]
    termination_block: str
    binary_blocks: tuple[str, ...] = field(default=())

    def block(self, name: str) -> slice:
        start = 0
        for bname, width, _ in self.blocks:
            if bname == name:
                return slice(start, start + width)
            start += width
        raise KeyError(f"unknown column block {name!r}; known: {[b[0] for b in self.blocks]}")

    def unit(self, name: str) -> str:
        return {b[0]: b[2] for b in self.blocks}[name]

    @property
    def n_columns(self) -> int:
        return sum(w for _, w, _ in self.blocks)

    def _span(self, names: tuple[str, ...]) -> slice:
        slices = [self.block(n) for n in names]
        for a, b in zip(slices, slices[1:], strict=False):
            if a.stop != b.start:
                raise ValueError(f"blocks {names} are not contiguous")
        return slice(slices[0].start, slices[-1].stop)

    @property
    def state(self) -> slice:
        return self._span(self.state_blocks)

    @property
    def action(self) -> slice:
        return self.block(self.action_block)

    @property
    def contacts(self) -> slice:
        return self._span(self.contact_blocks)

    @property
    def termination(self) -> slice:
        return self.block(self.termination_block)

    @property
    def state_dim(self) -> int:
        return self.state.stop - self.state.start

    @property
    def action_dim(self) -> int:
        return self.action.stop - self.action.start

    @property
    def contact_dim(self) -> int:
        return self.contacts.stop - self.contacts.start

    @property
    def termination_dim(self) -> int:
        return self.termination.stop - self.termination.start

    @property
    def termination_column(self) -> int:
        return self.termination.start

    def binary_columns(self) -> list[int]:
        """Columns that must hold exactly 0 or 1 (contacts, termination)."""
        cols: list[int] = []
        for name in self.binary_blocks:
            s = self.block(name)
            cols.extend(range(s.start, s.stop))
        return cols

    def column_names(self, element_names: dict[str, list[str]] | None = None) -> list[str]:
        """Human-readable column names like ``joint_pos[LF_HFE]`` for reports and plots."""
        names: list[str] = []
        element_names = element_names or {}
        for bname, width, _ in self.blocks:
            elems = element_names.get(bname)
            for i in range(width):
                label = elems[i] if elems and i < len(elems) else str(i)
                names.append(f"{bname}[{label}]" if width > 1 else bname)
        return names
