"""The engine: everything about designs, shapes, models, data and training. No Qt here."""
