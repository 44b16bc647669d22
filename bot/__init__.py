"""Council Responder: a Rasa assistant that answers residents and hands the rest to people."""

__version__ = "0.1.0"

__all__ = ["__version__"]
