"""The data layer: dataset kinds by name (`datasets.KINDS`), their splits, augmentation
and the batch loaders (`loader`). Above `runtime`; it knows nothing of networks."""
