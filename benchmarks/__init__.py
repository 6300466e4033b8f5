"""Side-by-side benchmark of fhirsynth against its peers (see benchmarks/README.md)."""

import warnings

from fhirsynth.errors import ReproducibleNoiseWarning

# every benchmark fit is seeded on purpose (reproducible tables); none of its models is shared
warnings.filterwarnings("ignore", category=ReproducibleNoiseWarning)
