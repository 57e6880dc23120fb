"""Training: settings, datasets, recipes, the training loop and its events, metrics, run folders, evaluation and look-inside summaries."""
