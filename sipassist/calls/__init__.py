"""sipassist.calls: call records, the persistent queue and the call runner."""
