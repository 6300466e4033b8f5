"""Side-by-side benchmark of fhirsynth against its peers (see benchmarks/README.md)."""
