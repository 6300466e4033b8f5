import fhirsynth


def test_all_is_sorted_and_complete():
    names = [n for n in fhirsynth.__all__ if n != "__version__"]
    assert names == sorted(names)
    for name in fhirsynth.__all__:
        assert getattr(fhirsynth, name) is not None
