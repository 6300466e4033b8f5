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
#: ages in years the red team found passing both checks: an event or whose, then a unit;
#: ``age_of_*``; a short unit; any word after ``age`` that does not continue an English word
RED_TEAM_AGES = ("age_dx_yrs", "age_onset_years", "AGEDXYRS", "age_of_onset", "age_of_diagnosis",
                 "AGEOFPATIENT", "age_y", "age_now", "age_today", "AGETODAY", "age_first",
                 "age_last", "age_bl", "AGEBL", "age1", "age2", "momage", "dadage", "MATAGE",
                 "AGEAT1STVISIT", "agelastvisit", "yearsold", "YRSOLD")
#: ages in months or days by a short unit, or by a unit after the event (``age_at_*_months``)
RED_TEAM_UNIT_AGES = (("age_m", "months"), ("age_mon", "months"), ("AGEMNTHS", "months"),
                      ("age_at_visit_months", "months"), ("age_d", "days"),
                      ("age_dys", "days"), ("AGEATADMISSIONDAYS", "days"),
                      ("age_at_admission_days", "days"))
#: birth years the red team found passing both checks
RED_TEAM_BIRTH_YEARS = ("YEARBORN", "year_born", "born_year", "byear", "birth_yyyy", "DOBYYYY",
                        "momyob", "BIRTH_YR_PT")
#: names near those that are no age and no birth year: English words beginning "age",
#: "aged", bands and rates of ages, stages, and birth facts other than its date
RED_TEAM_NOT_AGES = ("ageing", "agency", "AGENCIES", "ageusia", "agenesis_kidney", "aged",
                     "AGED", "aged_care", "age_cat", "AGERANGE", "age_adjusted_rate",
                     "STAGEDX", "PTSTAGE", "stage_dx", "birth_weight", "born_preterm",
                     "triage_level", "usage_count", "average_los")
