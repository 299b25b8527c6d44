"""The experiment record: the one owner of an experiment's directory. It reads and writes the
state, holds the lease that makes one driver per experiment, decides new / resume / refuse /
restart, and reads results from Ray's files on disk, all without importing Ray."""
