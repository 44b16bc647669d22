"""Problem reports made in the chat, sent to the council's back office.

A pothole, a broken street light or fly-tipping goes to the back office through Open311
GeoReport v2, or to an email or webhook target.

See ``docs/architecture.md`` ("Problem reports").
"""
