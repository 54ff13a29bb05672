"""What the dashboard computes from what the store returns: views of experiments, no SQL."""
