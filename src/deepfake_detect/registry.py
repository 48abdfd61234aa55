"""One small registry shared by every plug-in kind, and the config protocol of the parts.

A part is a class whose constructor stores its arguments untouched under the same names
(scikit-learn's rule), so `get_config()` can read them back and `from_config()` can rebuild
it. A registry maps names to such classes, builds parts from a name, a config dict or an
instance, and turns a part back into ``{"name": ..., **config}`` for saving.

Third-party packages add parts through the entry-point group ``deepfake_detect.<kind>s``
(for example ``deepfake_detect.backbones``); the group is read on the first lookup.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Configurable:
    """Mixin: `get_config()` returns the constructor's arguments as stored on `self`."""

    registry_name: str = ""

    def get_config(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {
            name: getattr(self, name)
            for name, p in params.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]):
        return cls(**config)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self) -> int:
        return hash((type(self).__name__, repr(sorted(self.get_config().items()))))


class Registry(Generic[T]):
    """Names → classes for one kind of part (samplers, face detectors, backbones, ...)."""

    def __init__(self, kind: str, base: type):
        self.kind = kind
        self.base = base
        self._classes: dict[str, type] = {}
        self._entry_points_loaded = False

    @property
    def entry_point_group(self) -> str:
        return f"deepfake_detect.{self.kind}s"

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: make the class available under `name`."""

        def decorate(cls: type) -> type:
            if not (isinstance(cls, type) and issubclass(cls, self.base)):
                raise TypeError(f"{cls!r} is not a {self.base.__name__}; cannot register it as a {self.kind}")
            known = self._classes.get(name)
            if known is not None and known is not cls:
                raise ValueError(f"a {self.kind} named {name!r} is already registered ({known.__module__}.{known.__qualname__})")
            cls.registry_name = name
            self._classes[name] = cls
            return cls

        return decorate

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name not in self._classes:
                cls = ep.load()
                if ep.name not in self._classes:
                    self.register(ep.name)(cls)

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._classes)

    def get_class(self, name: str) -> type:
        if name not in self._classes:
            self._load_entry_points()
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names())}. "
                f"A plug-in package registers more through the entry-point group {self.entry_point_group!r}."
            ) from None

    def create(self, spec: Any, **kwargs: Any) -> T:
        """Build a part from a registry name, a ``{"name": ..., **config}`` dict or an instance."""
        if isinstance(spec, self.base):
            if kwargs:
                raise TypeError(f"keyword arguments cannot be applied to an existing {self.kind} instance")
            return spec
        if isinstance(spec, str):
            return self.get_class(spec)(**kwargs)
        if isinstance(spec, dict):
            config = dict(spec)
            try:
                name = config.pop("name")
            except KeyError:
                raise ValueError(f"a {self.kind} config dict needs a 'name' key; got {spec!r}") from None
            config.update(kwargs)
            return self.get_class(name).from_config(config)
        raise TypeError(f"a {self.kind} is given by name, config dict or {self.base.__name__} instance; got {spec!r}")

    def serialize(self, part: Any) -> dict[str, Any]:
        """The ``{"name": ..., **config}`` dict that `create` turns back into `part`."""
        name = type(part).registry_name
        if self._classes.get(name) is not type(part):
            raise ValueError(f"{type(part).__name__} is not registered as a {self.kind}; register it to save it")
        return {"name": name, **part.get_config()}
