"""What the test tiers share: paths, processes, capabilities, the project's settings, PostgreSQL, serving, the planner.

Test modules import from here, never from each other."""
