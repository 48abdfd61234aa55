"""Choose Keras' backend before Keras is first imported: the user's choice, else JAX; and keep
JAX's compiled programs on disk, so a new process does not compile the same models again."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")


def enable_compilation_cache() -> None:
    """Point JAX's persistent compilation cache at `$DEEPFAKE_DETECT_JAX_CACHE` (default: a
    `jax` folder beside the default feature cache; "none": off). A cache folder the user set
    for JAX is left alone, and so is a backend other than JAX."""
    if os.environ.get("KERAS_BACKEND") != "jax":
        return
    spec = os.environ.get("DEEPFAKE_DETECT_JAX_CACHE", "default")
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
