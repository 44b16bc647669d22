"""Custom actions of the Council Responder assistant (rasa-sdk action server).

``rasa run actions --actions actions`` imports every module of this package.
"""

__all__: list[str] = []
