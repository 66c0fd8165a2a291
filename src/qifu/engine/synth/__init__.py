"""The synthetic county: contract files for a Cixi-like county, deterministic by seed.

``county.write`` is the entry point. ``behaviour`` holds the filers' behavioural model (the
test bed for reminders), ``inject`` the labelled data-quality errors (the test bed for checks).
Everything here is made up: no real person, number or company.
"""
