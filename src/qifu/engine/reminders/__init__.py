"""Targeted reminders (Django-free): features from what a bureau has, a learned policy, and a
season simulator that scores a policy against the synthetic county's behavioural model."""
