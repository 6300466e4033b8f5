"""``python -m fhirsynth.cli``."""

from fhirsynth.cli import main

main()
