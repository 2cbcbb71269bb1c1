"""The FHIR R4 facade under /fhir/r4: Patient and Consent, read and search, as an EHR expects.

The resources come from the same batch loaders as /api/v1 (``portal.api.records``) and the
plugins' FHIR mappings (``portal.api.sections.FhirMapping``); errors are OperationOutcomes.
"""

PREFIX = "/fhir/r4"
FHIR_VERSION = "4.0.1"
MEDIA_TYPE = "application/fhir+json"
CLIENT_ID_SYSTEM = "urn:intake-portal:client-id"
