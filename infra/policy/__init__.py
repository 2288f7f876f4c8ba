"""The deployment checklist as a pulumi_policy pack: rules.py (the Policy objects, their levels per tier and the
configuration they take), resource_rules.py and stack_rules.py (the checks), props.py (reading what the engine
passes), levels.py (writes <tier>.json), __main__.py (the pack `pulumi preview --policy-pack` runs). The same rules
run on a recorded plan in infra/offline/checklist.py."""
