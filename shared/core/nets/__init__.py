"""The networks, their weights and cards: build, load, recipe and hyperparameters."""
