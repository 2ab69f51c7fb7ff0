"""The policies, one private module each; import them from `resilient`."""
