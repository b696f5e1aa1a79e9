"""Testing helpers for truefoundry-tracing: local receivers and pytest fixtures."""
