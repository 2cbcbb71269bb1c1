"""An example step plugin: the client confirms this portal is not for emergencies."""
