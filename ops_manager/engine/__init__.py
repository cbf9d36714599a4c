"""Use cases: the imperative shell that reads artifacts, calls reducers and writes results."""
