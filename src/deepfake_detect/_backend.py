"""Choose Keras' backend before Keras is first imported: the user's choice, else JAX; and, where
asked, keep JAX's compiled programs on disk, so a new process does not compile the same models again."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")

#: Names JAX's persistent compilation cache folder: a path, "default" (`cache_root()/jax`) or "none".
JAX_CACHE_ENV_VAR = "DEEPFAKE_DETECT_JAX_CACHE"


def enable_compilation_cache(default: str = "none") -> None:
    """Point JAX's persistent compilation cache at the folder `$DEEPFAKE_DETECT_JAX_CACHE` names
    (a path; "default": a `jax` folder in `cache_root()`; "none": off), or where it is unset, at
    `default`.

    Off unless asked: JAX's cache is one per process (its folder is read at the process's first
    compilation and kept), so turning it on keeps the user's own JAX programs there too. A
    process of the library's own (the CLI) may pass ``default="default"``. A folder the user set
    for JAX is left alone, and so is a backend other than JAX.
    """
    if os.environ.get("KERAS_BACKEND") != "jax":
        return
    spec = os.environ.get(JAX_CACHE_ENV_VAR, default)
    if spec.lower() == "none":
        return
    import jax

    if jax.config.jax_compilation_cache_dir:
        return
    if spec == "default":
        from .locations import cache_root

        spec = str(cache_root() / "jax")
    try:
        os.makedirs(spec, exist_ok=True)
    except OSError:  # a read-only home: compile every time, as without the cache
        return
    jax.config.update("jax_compilation_cache_dir", spec)
