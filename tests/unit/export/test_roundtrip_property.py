import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhirsynth.domain import TableSpec
from fhirsynth.export.tables import write_table
from fhirsynth.ingest.csv import MISSING_TOKENS, read_csv_table

_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1, max_size=12,
).filter(lambda s: s == s.strip() and s not in MISSING_TOKENS)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(_text, min_size=1, max_size=8),
       numbers=st.lists(st.integers(-10**6, 10**6), min_size=1, max_size=8))
def test_written_csv_reads_back_unchanged(tmp_path, values, numbers):
    n = min(len(values), len(numbers))
    df = pd.DataFrame({"label": pd.Series(values[:n], dtype="string"),
                       "count": pd.Series(numbers[:n], dtype="Int64")})
    spec = TableSpec.from_dict({"name": "p", "columns": {
        "label": {"type": "categorical", "domain": sorted(set(values[:n]))},
        "count": {"type": "integer", "bounds": [-10**6, 10**6]}}})
    path = write_table(df, tmp_path / "p.csv")
    back, _ = read_csv_table(path, spec)
    assert back["label"].tolist() == df["label"].tolist()
    assert back["count"].tolist() == df["count"].tolist()
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]  # no temporary file left
