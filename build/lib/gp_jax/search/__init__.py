"""Search: the RL agent, its environment and the baseline methods."""
