"""FHIR Bulk Data export (`$export`, the asynchronous pattern of the Bulk Data Access IG v2).

A kick-off stores a job (``models``); a worker loop (``worker``) claims it, takes its snapshot
(transactionTime with the change-log position, see ``selection``) and writes NDJSON per resource
type in keyset batches (``runner``, ``storage``); the status URL reports progress, then the
manifest (``manifest``); files are served to the key that started the job (``routes``).
"""
