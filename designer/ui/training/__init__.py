"""Training in the window: dataset and settings panel, background runs, live plots, evaluation,
run history and the export dialog."""
