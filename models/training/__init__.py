"""Training: architectures, training loops and recipes, the leave-one-source-out study."""
