"""The training loss both training stages use (the PruningNet's and the retrain's)."""
import jax
import jax.numpy as jnp
import optax


def classification(logits, labels, num_classes: int, label_smoothing: float):
  """(mean cross-entropy against label-smoothed one-hot targets, top-1 accuracy)."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  loss = optax.softmax_cross_entropy(logits, targets).mean()
  return loss, jnp.mean(jnp.argmax(logits, -1) == labels)
