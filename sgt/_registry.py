"""Named entries of one kind (saliency methods, datasets, experiments), the one pattern behind
`sgt.saliency.REGISTRY`, `sgt.data.REGISTRY` and `sgt.experiments.REGISTRY`."""

from __future__ import annotations


class Registry(dict):
    """A dict of name → entry whose `register` refuses duplicates and wrong types, and whose `lookup`
    names the known entries when a name is unknown."""

    def __init__(self, kind: str, entry_type: type, entries=(), *, hint: str = ""):
        super().__init__(entries)
        self.kind, self.entry_type, self.hint = kind, entry_type, hint

    def register(self, name: str, entry, *, replace: bool = False) -> None:
        """Add `entry` under `name` (an existing name only with `replace=True`)."""
        if not isinstance(entry, self.entry_type):
            raise ValueError(f"{self.entry_type.__name__.lower()}: expected a {self.entry_type.__module__}."
                             f"{self.entry_type.__name__}, got {type(entry).__name__}")
        if name in self and not replace:
            raise ValueError(f"name: a {self.kind} {name!r} is already registered; pass replace=True")
        self[name] = entry

    def unregister(self, name: str) -> None:
        self.lookup(name)
        del self[name]

    def lookup(self, name: str):
        if name not in self:
            known = self.hint or f"one of {sorted(self)}"
            raise ValueError(f"{self.kind.split()[-1]}: unknown {self.kind} {name!r}; expected {known}")
        return self[name]
