"""The EHR-facing API: keys for systems, bearer authentication, problem+json errors."""
