"""Typed stack configuration and the composition of the platform's components."""
