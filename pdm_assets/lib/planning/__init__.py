"""The maintenance planner's view: the daily fleet risk worklist, realized outcomes, the HTML report."""
