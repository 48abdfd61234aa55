"""Choose Keras' backend before Keras is first imported: the user's choice, else JAX."""

import os

os.environ.setdefault("KERAS_BACKEND", "jax")
