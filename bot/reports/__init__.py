"""Problem reports (a pothole, a broken street light, fly-tipping) made in the chat and sent
to the council's back office through Open311 GeoReport v2, or to an email or webhook target.

See ``docs/architecture.md`` ("Problem reports").
"""
