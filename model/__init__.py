"""The plan document's model: what the engine records and what the analyses and tools read.

records.py  the registrations, the run's result (the plan document) and the account before a run
findings.py a finding of a rule or an analysis, and their order
charts.py   the chart cache (where the pinned packages are, their names and digests)

Layers, each importing only those below it (tests/unit/test_layers.py enforces it):
stacks/data.py (the one reader of platform/) <- model <- analyses (analysis/, policy/) <- tools.
The engine (tools/mocks.py) fills the model; it is a tool, not a layer the model knows.
"""
