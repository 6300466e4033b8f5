"""Regenerate the sibling inputs of the hostile cases (invented data, fixed seed).

Run from this folder: ``python make_siblings.py``.  Each file is another input of the same
kind of fault as a case in ../shared/cases (see docs/robustness.md).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _write(name: str, header: list[str], rows: list[list[object]]) -> None:
    with (HERE / name).open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\r\n")
        w.writerow(header)
        w.writerows(rows)


def main() -> None:
    rng = random.Random(20261204)
    # 010: missingness that depends on another column, in another column type
    rows = []
    for i in range(400):
        sex = rng.choice(["female", "male"])
        weeks = rng.randint(4, 40) if sex == "female" and rng.random() < 0.7 else ""
        rows.append([f"S{i:04d}", sex, weeks, rng.choice(["yes", "no"])])
    _write("case010-sibling.csv", ["mrn", "sex", "pregnancy_weeks", "insured"], rows)
    # 011: a column constant in the data but not declared constant; a constant number
    rows = [["US", 4, rng.choice(["female", "male"]), rng.randint(90, 180)] for _ in range(80)]
    _write("case011-sibling.csv", ["country", "schema_major", "sex", "systolic_bp"], rows)
    # 013: integer labels 1..10 and string labels with spaces and punctuation
    rows = []
    for _ in range(300):
        pain = rng.randint(1, 10)
        ward = rng.choice(["Ward A", "Ward B (north)", "ICU/step-down"])
        opioid = "yes" if (pain >= 7 and rng.random() < 0.8) or rng.random() < 0.1 else "no"
        rows.append([pain, ward, opioid])
    _write("case013-sibling.csv", ["pain_score", "ward", "opioid"], rows)
    # 015: singletons in another column type (zip3) and a rare label, among 60 patients
    rows = []
    for i in range(60):
        rows.append([f"R{i:03d}", rng.choice(["female", "male"]), rng.choice(["021", "024"]),
                     rng.choice(["Asthma", "Hypertensive disorder"])])
    rows[17] = ["R017", "male", "036", "Hutchinson-Gilford progeria syndrome"]
    _write("case015-sibling.csv", ["patient_id", "sex", "zip3", "primary_condition"], rows)
    # 021: identifiers under other names (name, phone, e-mail, MRN, street)
    first = ["Aino", "Bartholomew", "Chidinma", "Dragomir", "Euphemia", "Fionnlagh"]
    rows = []
    for _ in range(70):
        name = f"{rng.choice(first)} Quixley{rng.randint(100, 999)}"
        rows.append([f"MRN{rng.randint(10**7, 10**8 - 1)}", name,
                     f"555-01{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
                     f"q{rng.randint(10**5, 10**6)}@example.test",
                     f"{rng.randint(1, 999)} Imaginary Lane", rng.choice(["F", "M"]),
                     rng.randint(18, 89), rng.randint(0, 12)])
    _write("case021-sibling.csv", ["MRN", "patient_name", "Home Phone", "e-mail",
                                   "street", "sex", "age", "visits"], rows)
    # 023: unicode column names, labels with comma, quote, newline; bidi and emoji free text
    cities = ['Zürich, "Altstadt"', "Malmö\nNord", "東京", "Łódź"]
    rows = []
    for i in range(60):
        rows.append([f"U{i:03d}", f"Ærøskøbing-Ibáñez{i}", rng.randint(140, 200),
                     rng.randint(40, 120), rng.choice(cities),
                     f"note \u202e{i} 🩺 with, comma and \"quote\"\nline two"])
    _write("case023-unicode-columns.csv",
           ["Id", "NAME", "Größe_cm", "体重", "Stadt", "NOTE"], rows)


if __name__ == "__main__":
    main()
