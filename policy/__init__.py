"""The platform's CrossGuard policy pack: security and reliability rules, written once.

`pulumi preview --policy-pack policy` runs them through `policy/__main__.py` (policy/crossguard.py
adapts each rule to a pulumi_policy policy); `make plan` and the tests run the same rules offline
through tools/policy_check.py. Rules live in `rules_*.py`, one module per area.
"""
