"""One small registry shared by every plug-in kind, and the config protocol of the parts.

A part is a class whose constructor stores its arguments untouched under the same names
(scikit-learn's rule), so `get_config()` can read them back and `from_config()` can rebuild
it. A registry maps names to such classes, builds parts from a name, a config dict or an
instance, and turns a part back into ``{"name": ..., **config}`` for saving.

Third-party packages add parts through the entry-point group ``deepfake_detect.<kind>s``
(for example ``deepfake_detect.backbones``); the group is read on the first lookup, and again
when a name is not found (a package installed since).
"""

from __future__ import annotations

import fnmatch
import inspect
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any, Callable, Generic, TypeVar

T = TypeVar("T")


class Configurable:
    """Mixin: `get_config()` returns the constructor's arguments as stored on `self`."""

    registry_name: str = ""
    #: Arguments naming files that this part unpickles: a saved model may not set them (see
    #: `DeepfakeDetector.load`), since unpickling a file can run code.
    unpickled_files: tuple[str, ...] = ()

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
        self._broken: dict[str, str] = {}  # entry-point name → why its plug-in failed to import

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

    def _load_entry_points(self, refresh: bool = False) -> None:
        """Register the classes of the entry-point group: once, or again with `refresh` (a
        package installed since). A plug-in that fails to import is recorded, not raised."""
        if self._entry_points_loaded and not refresh:
            return
        self._entry_points_loaded = True
        for ep in entry_points(group=self.entry_point_group):
            if ep.name in self._classes:
                continue
            try:
                cls = ep.load()
            except Exception as e:  # a broken plug-in must not hide the others
                package = ep.dist.name if ep.dist else ep.value
                self._broken[ep.name] = f"{package} ({ep.value}) failed to import: {type(e).__name__}: {e}"
                continue
            self._broken.pop(ep.name, None)
            if ep.name not in self._classes:
                self.register(ep.name)(cls)

    def names(self, pattern: str | Iterable[str] | None = None) -> list[str]:
        """Registered names, sorted; only those matching `pattern` (an fnmatch wildcard such as
        ``"mobilenet*"``, or several: any may match) where given, as timm's ``list_models``."""
        self._load_entry_points()
        names = sorted(self._classes)
        if pattern is None:
            return names
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        return [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]

    def get_class(self, name: str) -> type:
        """The class registered as `name`; KeyError naming the entry-point group if none is."""
        if name not in self._classes:
            self._load_entry_points(refresh=True)
        try:
            return self._classes[name]
        except KeyError:
            if name in self._broken:
                raise KeyError(f"{self.kind} {name!r} is registered through the entry-point group "
                               f"{self.entry_point_group!r} by {self._broken[name]}") from None
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
