#!/usr/bin/env bash
# Create benchmarks/.peers-venv: the peer synthesizers, isolated from fhirsynth's own deps.
# smartnoise-synth is installed with --no-deps because its declared dependency on opacus
# pulls the CUDA build of torch (~6 GB); MST and AIM need only mbi (private-pgm) and
# smartnoise-sql/opendp.  SDV is installed the same way (--no-deps: its neural synthesizers
# need torch, its GaussianCopula does not) with the few packages GaussianCopula imports.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
VENV=.peers-venv
test -x $VENV/bin/python || "$PY" -m venv $VENV
$VENV/bin/python -m pip install --quiet --upgrade pip
$VENV/bin/python -m pip install --quiet \
    "DataSynthesizer==0.1.13" \
    "mbi==1.1.0" \
    "smartnoise-sql==1.0.10" \
    "disjoint-set==0.9.0" \
    "Faker>=20" \
    "pac-synth==0.0.8" \
    "pandas>=2.1,<3" \
    "scikit-learn>=1.4"
$VENV/bin/python -m pip install --quiet --no-deps "smartnoise-synth==1.0.8"
$VENV/bin/python -m pip install --quiet --no-deps \
    "sdv==2.0.0" "rdt==2.0.0" "copulas==0.14.1" "sdmetrics==0.32.0" "platformdirs==4.14.9" \
    "boto3==1.44.8" "botocore==1.44.8" "s3transfer==0.19.3" "jmespath==1.1.0" \
    "urllib3==2.8.0" "tqdm==4.70.1" "plotly==7.1.0" "narwhals==2.29.0" \
    "cloudpickle==3.1.3" "graphviz==0.21"
$VENV/bin/python -c "import snsynth, mbi, DataSynthesizer; print('peers ok')"
$VENV/bin/python -c "from sdv.single_table import GaussianCopulaSynthesizer; print('sdv ok')"
$VENV/bin/python -m pip freeze > peers/installed.txt
du -sh $VENV | tee peers/venv-size.txt
