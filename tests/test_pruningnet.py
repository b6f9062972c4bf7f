"""PruningNet: generated kernels, configuration sampling, one compiled train step, BN recalibration."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import digits_resnet20
from gp_jax.config import validation
from gp_jax.config.build import spec_from_config
from gp_jax.data import digits, loader
from gp_jax.hypernet import candidates
from gp_jax.hypernet import pruningnet as pn_lib
from gp_jax.hypernet.pruningnet import kernel_shape, pruningnet_from_config
from gp_jax.net import channels, costs, sampling
from gp_jax.runtime import optim
from gp_jax.stages import pruningnet as stage


def tiny_config():
  config = digits_resnet20.get_config()
  config.dataset.resolution = 16
  config.pruningnet.batch_size = 16
  config.pruningnet.gcn_features = 16
  config.pruningnet.head_hidden = 8
  return config


def test_generated_kernels_have_full_layer_shapes():
  config = tiny_config()
  spec = spec_from_config(config)
  model = pruningnet_from_config(spec, config)
  variables = jax.jit(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 16, 16, 1)), jnp.asarray(spec.max_widths),
      train=False))()
  widths = jnp.asarray(spec.max_widths) // 2
  kernels = model.apply(variables, widths, method=model.kernels)
  convs = [l for l in spec.layers if l.kind != "dense"]
  assert set(kernels) == {l.name for l in convs}
  for layer in convs:
    assert kernels[layer.name].shape == kernel_shape(layer)
  # Different configurations give different weights: the heads see the configuration.
  other = model.apply(variables, jnp.asarray(spec.max_widths), method=model.kernels)
  assert not np.allclose(kernels["stem"], other["stem"])
  # The classifier and BN are ordinary parameters; conv kernels are not stored.
  net = variables["params"]["net"]
  assert "dense" in net["fc"] and "conv" not in net["stem"] and "bn" in net["stem"]


def test_sampler_uses_grid_fixed_groups_and_macs_range():
  config = tiny_config()
  spec = spec_from_config(config)
  fixed = channels.fixed_groups_mask(spec)
  grid = channels.keep_ratio_grid()
  sample = jax.jit(jax.vmap(sampling.make_sampler(
      spec, grid=grid, fixed=fixed, divisor=1, macs_range=(0.4, 0.6), tries=64)))
  widths = np.asarray(sample(jax.random.split(jax.random.key(0), 50)))
  assert np.all(widths[:, fixed] == np.asarray(spec.max_widths)[fixed])
  ratios = np.array([costs.macs_ratio(spec, w) for w in widths])
  assert np.mean((ratios >= 0.4) & (ratios <= 0.6)) > 0.95
  assert len({tuple(w) for w in widths}) == 50
  free = np.asarray(spec.max_widths)[~fixed]
  allowed = [set(np.clip(np.floor(grid * m + 0.5), 1, m).astype(int)) for m in free]
  for row in widths[:, ~fixed]:
    assert all(w in a for w, a in zip(row, allowed))


def test_train_step_compiles_once_for_many_configurations():
  config = tiny_config()
  config.pruningnet.configs_per_step = 2
  spec = spec_from_config(config)
  model = pruningnet_from_config(spec, config)
  c = config.pruningnet
  tx = optim.make_optimizer(c, 100)
  state = pn_lib.create_state(model, spec, tx, seed=0)
  sampler = stage.make_sampler(spec, config)
  traces = []
  inner = stage.make_train_step(model, spec, sampler, optim.learning_rate_schedule(c, 100),
                                configs_per_step=2, label_smoothing=0.1, seed=0)

  def counted(state, batch):
    traces.append(1)
    return inner(state, batch)

  step_fn = jax.jit(counted, donate_argnums=0)
  splits = digits.load_digits(16)
  batches = loader.train_batches(splits.train, 16, seed=0)
  losses = []
  for step in range(12):  # 12 steps x 2 configurations = 24 configurations
    state, metrics = step_fn(state, batches[step])
    losses.append(float(metrics["loss"]))
  assert len(traces) == 1
  assert int(state.step) == 12 and all(np.isfinite(losses))
  # The 24 configurations were all different (they derive from (seed, step)).
  keys = [jax.random.split(jax.random.fold_in(jax.random.key(0), s), 2) for s in range(12)]
  seen = {tuple(np.asarray(sampler(k))) for pair in keys for k in pair}
  assert len(seen) == 24


def test_recalibrated_eval_equals_train_mode_on_the_same_images():
  """Exact recalibration: eval with the recomputed statistics reproduces the batch-stat pass."""
  config = tiny_config()
  spec = spec_from_config(config)
  model = pruningnet_from_config(spec, config, bn_momentum=0.0)
  variables = model.init(jax.random.key(0), jnp.zeros((1, 16, 16, 1)),
                         jnp.asarray(spec.max_widths), train=False)
  images = jax.random.normal(jax.random.key(1), (32, 16, 16, 1))
  widths = jnp.asarray(np.maximum(np.asarray(spec.max_widths) * 3 // 4, 1))
  stats = candidates.recalibrate_batch_stats(model, variables["params"], widths, images)
  train_logits, _ = model.apply({"params": variables["params"]}, images, widths,
                                train=True, mutable=["batch_stats"])
  eval_logits = model.apply({"params": variables["params"], "batch_stats": stats},
                            images, widths, train=False)
  np.testing.assert_allclose(train_logits, eval_logits, rtol=1e-4, atol=1e-4)


def test_bad_pruningnet_config():
  config = tiny_config()
  config.pruningnet.configs_per_step = 3
  with pytest.raises(Exception, match="divisible"):
    validation.validate(config)


def test_bfloat16_momentum_halves_the_optimizer_state():
  config = tiny_config()
  params = {"w": jnp.ones((4, 4)), "b": jnp.ones((4,))}
  sizes = {}
  for dtype in ("float32", "bfloat16"):
    config.pruningnet.momentum_dtype = dtype
    tx = optim.make_optimizer(config.pruningnet, 10)
    state = tx.init(params)
    sizes[dtype] = sum(x.nbytes for x in jax.tree.leaves(state) if hasattr(x, "nbytes"))
    updates, state = tx.update(params, state, params)
    assert all(np.isfinite(np.asarray(u)).all() for u in jax.tree.leaves(updates))
  assert sizes["bfloat16"] < 0.6 * sizes["float32"]
