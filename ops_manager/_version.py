"""The package version, in a module of its own: readable without the package's exports."""

VERSION = "0.1.0"
