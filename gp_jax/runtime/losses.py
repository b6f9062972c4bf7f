"""The training losses: classification (both training stages) and soft targets."""
import jax
import jax.numpy as jnp
import optax


def classification(logits, labels, num_classes: int, label_smoothing: float):
  """(mean cross-entropy against label-smoothed one-hot targets, top-1 accuracy)."""
  targets = optax.smooth_labels(jax.nn.one_hot(labels, num_classes), label_smoothing)
  loss = optax.softmax_cross_entropy(logits, targets).mean()
  return loss, jnp.mean(jnp.argmax(logits, -1) == labels)


def soft_cross_entropy(logits, target_probs):
  """Mean cross-entropy against soft targets (the KL divergence to them plus their
  entropy, a constant): in-place distillation's loss. The targets carry no gradient."""
  return optax.softmax_cross_entropy(logits, jax.lax.stop_gradient(target_probs)).mean()


def distillation(student_logits, teacher_logits, temperature: float):
  """Hinton et al.'s soft-target loss: T^2 * KL(teacher || student) at temperature T
  (the T^2 keeps its gradients' scale as T changes). The teacher gets no gradient."""
  t = jax.nn.log_softmax(jax.lax.stop_gradient(teacher_logits) / temperature)
  s = jax.nn.log_softmax(student_logits / temperature)
  return temperature ** 2 * jnp.mean(jnp.sum(jnp.exp(t) * (t - s), axis=-1))
