"""Project files: reading, validating, upgrading and atomically writing them, and the templates gallery. Builds on :mod:`designer.engine.model`."""
