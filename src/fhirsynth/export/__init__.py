"""Writers for synthetic output: tables (CSV/Parquet) and FHIR R4 Bulk NDJSON."""
