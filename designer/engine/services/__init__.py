"""What the CLI (``designer.commands``) and the window (``designer.ui``) both do with a project,
written once: import a model into a project (:mod:`.model_import`), train a project
(:mod:`.train_project`) and export one (:mod:`.export_project`).

The two front ends call these and never import each other (an import-linter contract in
pyproject.toml). The services read and write files but know nothing of Qt or of argparse: each
front end says what it was asked and shows the outcome its own way. Importing them is cheap;
torch is loaded when a service runs.
"""
