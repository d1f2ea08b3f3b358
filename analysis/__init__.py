"""Analyses of a recorded plan (DESIGN.md, "Analyses of the plan").

Each module reads the registrations the offline engine recorded (model/records.py) and the pinned
data of platform/ (through stacks/data.py), never the stack config or the components, so it judges
a live plan, a saved plan document and a test's synthetic plan alike. Each adds one section to the
plan document.
"""
