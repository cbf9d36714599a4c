"""The typed model of ops-manager: values the reducers take and return."""
