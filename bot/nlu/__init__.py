"""NLU components of the assistant, registered with Rasa's default recipe.

Submodules are imported by dotted path from ``config.yml``; nothing is re-exported here so that
importing one component does not load the others' dependencies.
"""

__all__: list[str] = []
