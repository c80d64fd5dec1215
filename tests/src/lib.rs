//! Harness for end-to-end tests: starts the local runtime and talks to it.
