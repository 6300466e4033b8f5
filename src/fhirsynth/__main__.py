"""``python -m fhirsynth``."""

from fhirsynth.cli import main

main()
