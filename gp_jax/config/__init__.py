"""The config layer: the schema (every field's default and rule; it imports no jax),
its rules, validation, and building objects from a config. Above `search`: it
resolves names from the registries below it."""
