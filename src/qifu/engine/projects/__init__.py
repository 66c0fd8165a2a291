"""Phased acceptance of construction projects (分期验收、一次备案), Django-free: the phase's
state machine and the checklist templates per project type."""
