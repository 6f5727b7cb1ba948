"""The repository root's conftest: with it pytest puts the root on sys.path,
so that tests/ and bench/ both import their shared helpers from testsupport/."""
