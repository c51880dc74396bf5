"""Pictures of a mode's published warehouse: the funnel, coverage over time, score distributions."""
