"""Column names the Safe Harbor age and birth-year rules must read (or not) as such."""

#: ages written in capitals or lower case without separators (a known word around ``age``)
RUN_TOGETHER_AGES = ("PATIENTAGE", "AGEATDX", "AGEYEARS", "PTAGE", "CURRENTAGE",
                     "AGE_AT_ADMISSION", "SUBJECTAGE", "ONSETAGE", "DEATHAGE", "AGEDX",
                     "AGE_DX", "AGEONSET", "AGEATDEATH", "BASELINEAGE", "ENROLLMENTAGE",
                     "AGEATENROLMENT", "AGEINYEARS", "AGEYRS", "patientage", "ageatdiagnosis",
                     "ptage_yrs", "age_onset", "Patientage")
#: English words (and age bands, ages in other units) holding the letters "age": never ages
#: (``image`` is left out of the pre-check: it is a photo by name)
RUN_TOGETHER_NOT_AGES = ("STAGE", "DOSAGE", "USAGE", "TRIAGE", "AVERAGE", "PERCENTAGE",
                         "COVERAGE", "DRAINAGE", "PACKAGE", "MESSAGE", "DAMAGE", "LEAKAGE",
                         "MILEAGE", "VOLTAGE", "LINEAGE", "PASSAGE", "STORAGE", "PAGE", "WAGE",
                         "CAGE", "SAGE", "AGENT", "AGENCY", "AGENDA", "MANAGER", "TEENAGE",
                         "PERSONAGE", "POSTAGE", "stage", "dosage", "agents", "AGEGROUP",
                         "AGEBAND", "AGEMONTHS", "PATIENTAGE_GROUP", "AGED")
#: birth years written without separators
RUN_TOGETHER_BIRTH_YEARS = ("BIRTHYEAR", "YEAROFBIRTH", "YOB", "DOBYEAR", "PATIENTBIRTHYEAR",
                            "PTYOB", "BIRTHYR", "DATEOFBIRTHYEAR", "yearofbirth", "dobyear")
