"""Analyses of a recorded plan (DESIGN.md, "Analyses of the plan").

Each module reads the registrations the offline engine recorded (tools/mocks.py) and the pinned data
in platform/, never the stack config or the components, so it judges a live plan, a saved plan
document and a test's synthetic plan alike. Each adds one section to the plan document.
"""
