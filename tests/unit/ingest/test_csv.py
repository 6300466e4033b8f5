import csv
import io
import re
from pathlib import Path

import pandas as pd
import pytest

from fhirsynth.domain import TableSpec, load_spec
from fhirsynth.encode import encode
from fhirsynth.errors import SpecError, TableInputError
from fhirsynth.ingest.columns import restricted_zip3, year_of, zip3
from fhirsynth.ingest.csv import classify_columns, read_csv_table

ROOT = Path(__file__).resolve().parents[3]
C021 = "021-identifier-columns"
C023 = "023-unicode-names-and-text"


def _spec(**columns) -> TableSpec:
    return TableSpec.from_dict({"name": "t", "columns": columns})


def _write(tmp_path: Path, text: str, name: str = "t.csv", bom: bool = False) -> Path:
    p = tmp_path / name
    p.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return p


PATIENT_SPEC = {
    "Id": {"role": "key"},
    "GENDER": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
    "birth_year": {"type": "integer", "bounds": [1900, 2026],
                   "source": {"column": "BIRTHDATE", "transform": "year"}},
    "state": {"type": "categorical", "domain": ["MA", "NY"],
              "source": {"column": "STATE", "transform": "state"}},
    "zip3": {"type": "categorical", "other": True, "domain": ["000", "010", "021"],
             "source": {"column": "ZIP", "transform": "zip3"}},
    "HEALTHCARE_EXPENSES": {"type": "numeric", "bounds": [0, 2000000]},
}


# ------------------------------------------------------------------- classification
def test_case_021_classification(shared_cases):
    header = (shared_cases / C021 / "input-patients.csv").read_text().splitlines()[0].split(",")
    c = classify_columns(header)
    assert c["Id"].role == "key" and c["Id"].treatment == "regenerate"
    for name in ("SSN", "DRIVERS", "FIRST", "LAST", "ADDRESS", "LAT", "LON"):
        assert c[name].role == "identifier", name
    assert (c["ZIP"].role, c["ZIP"].treatment) == ("quasi_identifier", "zip3")
    assert (c["CITY"].role, c["CITY"].treatment) == ("quasi_identifier", "drop")
    assert c["STATE"].role == "quasi_identifier"
    assert c["BIRTHDATE"].treatment == "year"
    assert c["HEALTHCARE_EXPENSES"].role == "feature" and c["GENDER"].role == "feature"


def test_classification_sibling_names():
    c = classify_columns(["patient_name", "Home Phone", "e-mail", "admission_date", "zip_code",
                          "last_visit_count", "long_term_care", "Clinical Notes", "MRN", "bmi"])
    roles = {k: v.role for k, v in c.items()}
    assert roles == {"patient_name": "identifier", "Home Phone": "identifier",
                     "e-mail": "identifier", "admission_date": "quasi_identifier",
                     "zip_code": "quasi_identifier", "last_visit_count": "feature",
                     "long_term_care": "feature", "Clinical Notes": "identifier",
                     "MRN": "identifier", "bmi": "feature"}


def test_birthplace_is_geography_below_state():
    # Synthea's BIRTHPLACE holds "town  state  country": a Safe Harbor geography
    c = classify_columns(["BIRTHPLACE", "place_of_birth", "birth_city", "hometown", "pob",
                          "birth_weight"])
    assert {k: (v.role, v.treatment) for k, v in c.items()} == {
        "BIRTHPLACE": ("quasi_identifier", "drop"), "place_of_birth": ("quasi_identifier", "drop"),
        "birth_city": ("quasi_identifier", "drop"), "hometown": ("quasi_identifier", "drop"),
        "pob": ("quasi_identifier", "drop"), "birth_weight": ("feature", "model")}


def test_zip3_restricted_prefixes():
    restricted = restricted_zip3()
    assert len(restricted) == 17 and {"036", "059", "893"} <= restricted
    assert zip3("03601") == "000" and zip3("89301-1234") == "000"
    assert zip3("02115") == "021" and zip3("1028") == "010"
    assert zip3("ABCDE") is None and zip3("") is None
    text = (ROOT / "compliance" / "restricted-zip3.csv").read_text()
    assert "2000 Census" in text and "HHS" in text
    assert year_of("1974-12") == 1974 and year_of("1974-12-01T10:00:00Z") == 1974
    assert year_of("12/01/1974") is None


# ------------------------------------------------------------------------ case 021
def test_case_021_read_with_schema_never_models_identifiers(shared_cases):
    path = shared_cases / C021 / "input-patients.csv"
    df, rep = read_csv_table(path, _spec(**PATIENT_SPEC))
    assert list(df.columns) == ["GENDER", "birth_year", "state", "zip3", "HEALTHCARE_EXPENSES"]
    assert len(df) == 80
    assert df["zip3"].str.fullmatch(r"\d{3}").all()
    assert df["state"].eq("MA").all()
    raw = pd.read_csv(path, dtype=str)
    blob = df.to_csv(index=False)
    for col in ("Id", "SSN", "DRIVERS", "FIRST", "LAST", "ADDRESS", "LAT", "LON"):
        leaked = [v for v in raw[col].dropna() if v in blob]
        assert not leaked, col
    assert rep.columns["SSN"].role == "identifier" and rep.columns["Id"].role == "key"
    encode(_spec(**PATIENT_SPEC), df)


@pytest.mark.parametrize(
    ("extra", "message"),
    [({"FIRST": {"type": "categorical", "domain": ["x"]}}, "looks like a direct identifier"),
     ({"ZIP": {"type": "categorical", "domain": ["x"]}}, "declare source: {transform: zip3}"),
     ({"CITY": {"type": "categorical", "domain": ["x"]}}, "which Safe Harbor removes")],
)
def test_case_021_schema_modelling_an_identifier_is_refused(shared_cases, extra, message):
    path = shared_cases / C021 / "input-patients.csv"
    with pytest.raises(SpecError, match=re.escape(message)):
        read_csv_table(path, _spec(**PATIENT_SPEC, **extra))


def test_identifier_override_is_explicit(tmp_path):
    p = _write(tmp_path, "last,y\n1,2\n")
    spec = _spec(last={"type": "integer", "bounds": [0, 9]}, y={"type": "integer",
                                                              "bounds": [0, 9]})
    with pytest.raises(SpecError, match="allow_identifiers"):
        read_csv_table(p, spec)
    df, _ = read_csv_table(p, spec, allow_identifiers={"last"})
    assert df["last"].tolist() == [1]


# ------------------------------------------------------------------------ case 023
UNICODE_SPEC = {
    "Id": {"role": "key"},
    "GENDER": {"type": "categorical", "domain": ["female", "male", "other"]},
    "RACE": {"type": "categorical", "domain": ["white", "asian", "other"]},
    "birth_year": {"type": "integer", "bounds": [1900, 2026],
                   "source": {"column": "BIRTHDATE", "transform": "year"}},
}


@pytest.mark.parametrize("bom", [False, True])
def test_case_023_unicode_and_bom(shared_cases, tmp_path, bom):
    text = (shared_cases / C023 / "input-patients.csv").read_text(encoding="utf-8")
    path = _write(tmp_path, text, bom=bom)
    df, rep = read_csv_table(path, _spec(**UNICODE_SPEC))
    assert len(df) == 10 and list(df.columns) == ["GENDER", "RACE", "birth_year"]
    assert df["birth_year"].tolist()[:2] == [1950, 1955]
    assert {rep.columns[c].role for c in ("FIRST", "LAST", "NOTE")} == {"identifier"}
    assert rep.columns["CITY"].treatment == "drop"
    blob = df.to_csv(index=False)
    for word in ("Ibáñez", "周", "Łódź", "embedded newline", "\u202e"):
        assert word not in blob


def test_case_023_sibling_header_bom_and_quoted_fields(tmp_path):
    text = ('Id,GENDER,RACE,BIRTHDATE,NOTE\r\n'
            'a,female,asian,1999-01-01,"多行\r\nnote, ""quoted"""\r\n'
            'b,male,white,2001,\u200bzero width\r\n')
    df, _ = read_csv_table(_write(tmp_path, text, bom=True), _spec(**UNICODE_SPEC))
    assert df["RACE"].tolist() == ["asian", "white"]
    assert df["birth_year"].tolist() == [1999, 2001]


# ---------------------------------------------------------------- schema and errors
def test_shared_schemas_load_as_they_are(shared_data):
    spec = load_spec(shared_data / "tabular" / "stroke.schema.json")
    df, _ = read_csv_table(shared_data / "tabular" / "stroke.csv", spec)
    assert "id" not in df.columns and len(df) == 5110
    assert df["bmi"].isna().sum() > 0 and df["bmi"].dtype == "float64"
    assert df["hypertension"].dtype == pd.StringDtype()
    encode(spec, df)


def test_bad_cell_names_file_line_column_not_value(tmp_path):
    p = _write(tmp_path, 'a,b\n1,x\n"2\nstill 2",y\n3,SECRET-VALUE\n')
    spec = _spec(a={"type": "categorical", "domain": ["1", "2\nstill 2", "3"]},
                 b={"type": "categorical", "domain": ["x", "y"]})
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, spec)
    msg = str(err.value)
    assert "t.csv line 5: b: value not in the declared category list" in msg
    assert "SECRET" not in msg
    df, rep = read_csv_table(p, spec, strict=False)
    assert len(df) == 2 and rep.rows_dropped == 1 and len(rep.issues) == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [("a\n1.5\n", "line 2: a: not a whole number"), ("a\nabc\n", "line 2: a: not a number"),
     ("a\n1\n\n2,3\n", "line 4: expected 1 fields, found 2"),
     ("a\nN/A\n", "line 2: a: missing value in a non-nullable column"),
     ("b\n1\n", "the header lacks schema column(s) ['a']"),
     ("a;b\n1;2\n", "the file looks ';'-separated; fhirsynth reads comma-separated CSV"),
     ("a\tb\n1\t2\n", "the file looks tab-separated"),
     ("A,c\n1,2\n", "the header has 'A' for 'a': column names must match the schema exactly"),
     # trial 16: float() read "1_0" as 10 and Arabic-Indic or full-width digits as 82
     ("a\n1_0\n", "line 2: a: not a number"), ("a\n\u0668\n", "line 2: a: not a number"),
     ("a\n\uff18\n", "line 2: a: not a number"), ("a\ninf\n", "line 2: a: not a finite")],
)
def test_malformed_rows(tmp_path, text, message):
    spec = _spec(a={"type": "integer", "bounds": [0, 9], "nullable": False})
    with pytest.raises(TableInputError, match=re.escape(message)):
        read_csv_table(_write(tmp_path, text), spec)


def test_missing_tokens_and_not_utf8(tmp_path):
    spec = _spec(a={"type": "numeric", "bounds": [0, 9]}, b={"type": "boolean"})
    df, _ = read_csv_table(_write(tmp_path, "a,b\nN/A,yes\n,NO\n2.5,?\n"), spec)
    assert df["a"].isna().tolist() == [True, True, False]
    assert df["b"].tolist()[:2] == [True, False] and df["b"].isna().tolist()[2]
    bad = tmp_path / "latin1.csv"
    bad.write_bytes("a,b\n1,\xe9\n".encode("latin-1"))
    with pytest.raises(TableInputError, match="not UTF-8"):
        read_csv_table(bad, spec)


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be", "utf-16"])
def test_a_utf16_csv_is_named_as_utf16_with_or_without_a_byte_order_mark(tmp_path, encoding):
    # without a BOM it was read as a header of names holding NULs ("the header lacks ...")
    from fhirsynth.schema_skeleton import read_csv_header

    spec = _spec(a={"type": "integer", "bounds": [0, 9]}, sex={"type": "categorical",
                                                                "domain": ["f", "m"]})
    p = tmp_path / "u16.csv"
    p.write_bytes("a,sex\n1,f\n2,m\n3,\u00e9\n".encode(encoding))
    bom = "" if encoding == "utf-16" else "looks like UTF-16 text without a byte-order mark, "
    for strict in (True, False):
        with pytest.raises(TableInputError) as info:
            read_csv_table(p, spec, strict=strict)
        msg = str(info.value)
        assert msg.startswith(f"{p}: ") and "UTF-16" in msg and bom in msg
        assert "save it as UTF-8" in msg and "header" not in msg and "\x00" not in msg
    with pytest.raises(TableInputError, match=r"u16\.csv: .*UTF-16.*save it as UTF-8"):
        read_csv_header(p)  # `fhirsynth columns`


def test_a_nul_byte_in_a_csv_line_is_one_error_naming_file_and_line(tmp_path):
    spec = _spec(a={"type": "integer", "bounds": [0, 9]})
    # in a column the schema does not read, it passed silently; a lone NUL is not UTF-16
    p = _write(tmp_path, "a,note\n1,x\n2,SECRET\x00\n3,\"multi\nline\"\n4,y\x00\n")
    for strict in (True, False):
        with pytest.raises(TableInputError) as info:
            read_csv_table(p, spec, strict=strict)
        msg = str(info.value)
        assert msg.startswith(f"{p}: line 3 holds a NUL byte") and "SECRET" not in msg
        assert "UTF-16" not in msg
    q = _write(tmp_path, "a,no\x00te\n1,x\n", name="h.csv")
    with pytest.raises(TableInputError, match=r"h\.csv: line 1 holds a NUL byte"):
        read_csv_table(q, spec)


# --------------------------------------------------------------------------- folding
def test_rows_of_one_patient_fold_or_are_rejected(tmp_path):
    p = _write(tmp_path, "pid,x\np1,1\np2,2\np1,3\n")
    spec = _spec(pid={"role": "key"}, x={"type": "integer", "bounds": [0, 9]})
    with pytest.raises(TableInputError, match=r"1 patient id\(s\) appear on more than one row "
                                              r"\(first repeat at line 4\)"):
        read_csv_table(p, spec)
    first, rep = read_csv_table(p, spec, fold="first")
    assert first["x"].tolist() == [1, 2] and rep.rows_folded == 1
    last, _ = read_csv_table(p, spec, fold="last")
    assert last["x"].tolist() == [2, 3]
    assert "pid" not in first.columns


def test_csv_round_trip_through_csv_module(tmp_path):
    buf = io.StringIO()
    csv.writer(buf).writerows([["k", "v"], ["1", "a"], ["2", "b"]])
    df, _ = read_csv_table(_write(tmp_path, buf.getvalue()),
                           _spec(k={"role": "key"}, v={"domain": ["a", "b"]}))
    assert df["v"].tolist() == ["a", "b"]


def test_other_category_encodes_from_string_dtype(tmp_path):
    # regression: encode wrote into a read-only array for 'other' values of a string column
    spec = _spec(z={"domain": ["010"], "other": True,
                    "source": {"column": "ZIP", "transform": "zip3"}})
    df, _ = read_csv_table(_write(tmp_path, "ZIP\n01028\n02115\n"), spec)
    assert encode(spec, df).codes[:, 0].tolist() == [0, 1]


def test_lenient_mode_drops_rows_with_wrong_field_count(tmp_path):
    spec = _spec(a={"type": "integer", "bounds": [0, 9]})
    df, rep = read_csv_table(_write(tmp_path, "a\n1\n2,3\n4\n"), spec, strict=False)
    assert df["a"].tolist() == [1, 4]
    assert rep.rows_read == 3 and rep.rows_dropped == 1
    assert str(rep.issues[0]) == "t.csv line 3: expected 1 fields, found 2"


# ------------------------------------------------------------- several bad rows: file order
ORDER_SPEC = {"pid": {"role": "key"},
              "age": {"type": "integer", "bounds": [0, 120]},
              "sex": {"type": "categorical", "domain": ["F", "M"]}}
# line 3: a value error; line 5: a wrong field count; line 6: empty id; line 7: a value error
SEVERAL_BAD = ("pid,age,sex\n"
               "p1,40,F\n"
               "p2,SECRET-AGE,M\n"
               "p3,50,F\n"
               "p4,60,M,extra\n"
               ",61,F\n"
               "p6,70,SECRET-SEX\n"
               "p7,80,M\n")


def test_strict_names_the_first_bad_row_in_file_order(tmp_path):
    p = _write(tmp_path, SEVERAL_BAD)
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, _spec(**ORDER_SPEC), strict=True)
    msg = str(err.value)
    head = msg.splitlines()[0]
    assert str(p) in head and "first bad row is line 3" in head
    assert "4 row(s)" in head
    listed = [str(i) for i in err.value.issues]
    assert listed == ["t.csv line 3: age: not a number",
                      "t.csv line 5: expected 3 fields, found 4",
                      "t.csv line 6: pid: empty patient id",
                      "t.csv line 7: sex: value not in the declared category list"]
    assert msg.index("line 3: age") < msg.index("line 5: expected")
    assert "SECRET" not in msg and "extra" not in msg


def test_strict_field_count_error_first_when_it_comes_first(tmp_path):
    p = _write(tmp_path, "a,b\n1,2,3\n1,x\n")
    spec = _spec(a={"type": "integer", "bounds": [0, 9]}, b={"type": "integer", "bounds": [0, 9]})
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, spec)
    assert "first bad row is line 2" in str(err.value)
    assert [str(i) for i in err.value.issues] == ["t.csv line 2: expected 2 fields, found 3",
                                                  "t.csv line 3: b: not a number"]


def test_strict_malformed_quoting_comes_after_earlier_bad_rows(tmp_path):
    p = _write(tmp_path, 'a\n1\nx\n"2\n')
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, _spec(a={"type": "integer", "bounds": [0, 9]}))
    assert "first bad row is line 3" in str(err.value)
    assert [i.where for i in err.value.issues] == ["t.csv line 3", "t.csv line 4"]
    assert "malformed CSV" in str(err.value.issues[1])


def test_lenient_counts_and_issues_in_file_order(tmp_path):
    df, rep = read_csv_table(_write(tmp_path, SEVERAL_BAD), _spec(**ORDER_SPEC), strict=False)
    assert df["age"].tolist() == [40, 50, 80]
    assert rep.rows_read == 7 and rep.rows_dropped == 4 and rep.rows_folded == 0
    assert [i.where for i in rep.issues] == ["t.csv line 3", "t.csv line 5", "t.csv line 6",
                                             "t.csv line 7"]
    assert "SECRET" not in " ".join(str(i) for i in rep.issues)


def test_lenient_import_report_counts_with_folding(tmp_path):
    from fhirsynth.ingest import read_input

    text = "pid,age,sex\np1,40,F\np1,41,F\np2,x,M\np3,50,F,extra\np4,60,M\n"
    spec = TableSpec.from_dict({"name": "t", "fold": "first",
                                "columns": ORDER_SPEC})
    table, rep = read_input([_write(tmp_path, text)], spec, strict=False)
    assert len(table) == 2  # p1 (folded) and p4
    assert (rep["rows_read"], rep["rows_dropped"], rep["rows_folded"]) == (5, 2, 1)
    assert rep["issues"][0].startswith("t.csv line 4: age")


def test_dropped_share_counts_folded_rows_as_read(tmp_path):
    from fhirsynth.ingest import read_input
    from fhirsynth.pipeline import _check_rows_dropped

    # 20 rows read: 18 of patient p1 (folded into one), one bad row, one of p2
    text = "pid,age,sex\n" + "p1,40,F\n" * 18 + "p9,x,M\np2,50,M\n"
    spec = TableSpec.from_dict({"name": "t", "fold": "first", "columns": ORDER_SPEC})
    table, rep = read_input([_write(tmp_path, text)], spec, strict=False)
    assert (len(table), rep["rows_read"], rep["rows_dropped"]) == (2, 20, 1)
    # 1 of 20 rows (5 %) is a note, not the "schema is probably wrong" failure (1 of 3)
    (note,) = _check_rows_dropped(rep, len(table))
    assert note.startswith("1 row(s) did not fit the schema") and "line 20: age" in note


def test_cli_ingest_strict_names_the_first_bad_row(tmp_path):
    import json

    from typer.testing import CliRunner

    from fhirsynth.cli import app

    schema = tmp_path / "t.schema.json"
    schema.write_text(json.dumps({"name": "t", "columns": ORDER_SPEC}))
    args = ["ingest", str(_write(tmp_path, SEVERAL_BAD)), "--schema", str(schema),
            "--out", str(tmp_path / "out.csv")]
    strict = CliRunner().invoke(app, [*args, "--strict"])
    text = " ".join(strict.output.split())
    assert strict.exit_code == 2 and "first bad row is line 3" in text
    assert "t.csv line 3: age: not a number" in text and "SECRET" not in text
    assert not (tmp_path / "out.csv").exists()
    lenient = CliRunner().invoke(app, args)
    assert lenient.exit_code == 0 and (tmp_path / "out.csv").is_file()
    assert len(pd.read_csv(tmp_path / "out.csv")) == 3


def test_a_feature_spec_given_for_another_csv_is_named(tmp_path):
    from fhirsynth.ingest.features import load_feature_spec

    with pytest.raises(TableInputError, match="the schema is a FHIR feature spec: it reads "
                       "the table `fhirsynth ingest` writes"):
        read_csv_table(_write(tmp_path, "gender,age\nf,40\n"), load_feature_spec(None))


@pytest.mark.parametrize("text", ["a\nabc\n", "a\n1\n\n2,3\n", "b\n1\n",
                                  "1,2024-01-01\n3,4\n", "a,a\n1,2\n"])
def test_a_csv_name_that_may_hold_an_identifier_is_withheld_in_messages(tmp_path, text):
    # trials 15-17: file names are printed in messages; a CSV named after a patient's record
    # number must not put it on the console (FHIR files follow the same policy)
    spec = _spec(a={"type": "integer", "bounds": [0, 9], "nullable": False})
    p = _write(tmp_path, text, name="mrn-00123456.csv")
    with pytest.raises(TableInputError) as err:
        read_csv_table(p, spec)
    msg = str(err.value) + " ".join(i.where for i in err.value.issues or ())
    assert "00123456" not in msg and "name withheld" in msg
    ok = _write(tmp_path, text, name="cohort.csv")
    with pytest.raises(TableInputError, match="cohort.csv"):
        read_csv_table(ok, spec)


@pytest.mark.parametrize("text", ["", "1,2024-01-01\n3,4\n", "a,a\n1,2\n", "a,,b\n1,2,3\n"])
def test_the_header_reader_withholds_a_name_that_may_hold_an_identifier(tmp_path, text):
    # trial 19 (helper): `fhirsynth columns` and the headerless / duplicate-name checks
    # printed the raw path, where the reader withholds it
    from fhirsynth.schema_skeleton import read_csv_header

    p = _write(tmp_path, text, name="mrn-00123456.csv")
    with pytest.raises(TableInputError) as err:
        read_csv_header(p)
    assert "00123456" not in str(err.value) and "name withheld" in str(err.value)


def test_a_birth_date_written_together_is_a_birth_date():
    # the harbor helper: PATIENTDOB and PTBIRTHDATE got "no identifier pattern"
    from fhirsynth.ingest.columns import BIRTH_DATE_REASON

    c = classify_columns(["PATIENTDOB", "PTBIRTHDATE", "DATEOFBIRTH", "birth_weight",
                          "born_preterm", "DOBYEAR"])
    assert {k: v.reason == BIRTH_DATE_REASON for k, v in c.items()} == {
        "PATIENTDOB": True, "PTBIRTHDATE": True, "DATEOFBIRTH": True, "birth_weight": False,
        "born_preterm": False, "DOBYEAR": False}
    assert (c["PATIENTDOB"].role, c["PATIENTDOB"].treatment) == ("quasi_identifier", "year")


def test_a_flag_about_a_birth_date_is_no_birth_date(tmp_path):
    """Red team F3: `dob` anywhere in a name made a birth date, so `run` refused to model a
    categorical flag `dob_verified`; a birth date itself (`patient_dob`, `DOB_ISO`) still
    needs its year transform."""
    from fhirsynth.evaluate.safe_harbor import is_birth_date_name
    from fhirsynth.ingest.columns import classify_column

    flags = ("dob_verified", "DOB_UNKNOWN", "dob_estimated", "dateofbirth_known",
             "birthday_month")
    dates = ("dob", "patient_dob", "PATIENTDOB", "DOB_ISO", "dob_date", "birth_date_mother",
             "DateOfBirth", "birthday")
    assert [n for n in flags if is_birth_date_name(n, strict=True)] == []
    assert [n for n in dates if not is_birth_date_name(n, strict=True)] == []
    assert {classify_column(n).role for n in flags} == {"feature"}
    assert {classify_column(n).treatment for n in dates} == {"year"}
    p = _write(tmp_path, "dob_verified,sex\nyes,f\nno,m\n")
    flag = {"type": "categorical", "domain": ["yes", "no"]}
    df, _ = read_csv_table(p, _spec(dob_verified=flag, sex={"domain": ["f", "m"]}))
    assert list(df["dob_verified"]) == ["yes", "no"]
    p = _write(tmp_path, "patient_dob,sex\n1950-01-02,f\n1960-03-04,m\n", name="d.csv")
    with pytest.raises(SpecError, match=r"column 'patient_dob' is modelled but holds a birth"):
        read_csv_table(p, _spec(patient_dob={"type": "categorical", "domain": ["a"]},
                                sex={"domain": ["f", "m"]}))


def test_the_file_name_is_screened_once_not_once_per_row(tmp_path, monkeypatch):
    # every row's place ("t2.csv line N") screened the file name for identifiers again, a
    # pandas regex pass per row: 20,000 Adult rows took 28 s to read (500,000: 12 minutes)
    import fhirsynth.evaluate.safe_harbor_spec as shs
    from fhirsynth.ingest.sources import may_hold_identifier

    calls = []
    real = shs.identifier_kinds
    monkeypatch.setattr(shs, "identifier_kinds", lambda s: calls.append(s) or real(s))
    getattr(may_hold_identifier, "cache_clear", lambda: None)()
    p = tmp_path / "t2.csv"  # a digit in the name: the name is screened
    p.write_text("sex,age\n" + "F,40\nM,51\n" * 1500, encoding="utf-8")
    spec = TableSpec.from_dict({"name": "t", "columns": {
        "sex": {"type": "categorical", "domain": ["F", "M"], "nullable": False},
        "age": {"type": "numeric", "bounds": [0, 89], "integer": True, "nullable": False}}})
    table, _ = read_csv_table(p, spec)
    assert len(table) == 3000
    assert 0 < len(calls) <= 5
