"""The catalog microservice: see `catalog.server`."""
