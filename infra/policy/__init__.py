"""The deployment checklist as a pulumi_policy pack: rules.py (the rules and their enforcement per tier),
offline.py (the same rules on a recorded plan), __main__.py (the pack `pulumi preview --policy-pack` runs)."""
