"""Human handoff: records of conversations given to people, and the queue agents work from."""

__all__: list[str] = []
