"""Reading clinical input: FHIR R4 resources and clinical CSV, folded one row per patient."""
