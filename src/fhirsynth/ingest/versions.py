"""Which FHIR version a resource belongs to, and the model set that reads the configured one.

fhirsynth reads FHIR R4.  fhir.resources' top-level models are R5 and reject R4 data, so R4
is read with the ``fhir.resources.R4B`` models (R4B changed no patient-data resource).  The
version is one named setting; this module maps it to a model package and recognises input
from another version (R5-only or STU3-only resource types, core profiles of another release).
"""

from __future__ import annotations

import importlib
import re
from functools import cache
from typing import Any

from fhirsynth.errors import ConfigError, FHIRVersionError

__all__ = [
    "R4_NOT_IN_R4B",
    "R5_ONLY_TYPES",
    "STU3_ONLY_TYPES",
    "SUPPORTED_VERSIONS",
    "check_resource_version",
    "element_version_hint",
    "is_resource_type",
    "model_class",
    "resource_types",
]

#: Setting value -> the fhir.resources package whose models read it.
SUPPORTED_VERSIONS: dict[str, str] = {"R4": "fhir.resources.R4B", "R4B": "fhir.resources.R4B"}

#: Resource types that exist in R5 (or its ballots) but not in R4/R4B.
R5_ONLY_TYPES = frozenset({
    "ActorDefinition", "ArtifactAssessment", "BiologicallyDerivedProductDispense",
    "ConditionDefinition", "DeviceAssociation", "DeviceDispense", "DeviceUsage",
    "EncounterHistory", "FormularyItem", "GenomicStudy", "ImagingSelection", "InventoryItem",
    "InventoryReport", "MedicationUsage", "NutritionIntake", "Permission",
    "RequestOrchestration", "Requirements", "TestPlan", "Transport",
})

#: Resource types of STU3 (or DSTU2) that R4 removed or renamed.
STU3_ONLY_TYPES = frozenset({
    "BodySite", "DataElement", "DeviceComponent", "DiagnosticOrder", "EligibilityRequest",
    "EligibilityResponse", "ExpansionProfile", "ImagingManifest", "MedicationOrder",
    "ProcedureRequest", "ProcessRequest", "ProcessResponse", "ReferralRequest", "Sequence",
    "ServiceDefinition",
})

#: R4 (4.0.1) resource types that R4B dropped: valid R4, but no model validates them here.
R4_NOT_IN_R4B = frozenset({
    "EffectEvidenceSynthesis", "MedicinalProduct", "MedicinalProductAuthorization",
    "MedicinalProductContraindication", "MedicinalProductIndication",
    "MedicinalProductIngredient", "MedicinalProductInteraction", "MedicinalProductManufactured",
    "MedicinalProductPackaged", "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect", "RiskEvidenceSynthesis", "SubstanceNucleicAcid",
    "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
    "SubstanceSourceMaterial", "SubstanceSpecification",
})

# Core specification profiles carry the release in their path; US Core's "STU3.1.1" does not
# match because it lives under /fhir/us/core/.
_PROFILE_VERSION = re.compile(
    r"^https?://hl7\.org/fhir/(STU3|DSTU2|R5|R6|1\.0(?:\.\d+)?|3\.0(?:\.\d+)?|5\.0(?:\.\d+)?)/"
)
_PROFILE_NAMES = {"STU3": "STU3", "DSTU2": "DSTU2", "R5": "R5", "R6": "R6", "1": "DSTU2",
                  "3": "STU3", "5": "R5"}


def _package(version: str) -> str:
    try:
        return SUPPORTED_VERSIONS[version]
    except KeyError:
        raise ConfigError(
            f"fhir_version ({version!r}) is not supported; use one of "
            f"{', '.join(sorted(SUPPORTED_VERSIONS))}"
        ) from None


def is_resource_type(version: str, name: Any) -> bool:
    """Whether the models of ``version`` define a resource type called ``name``."""
    return isinstance(name, str) and name in _model_names(version) and _is_resource(version, name)


@cache
def _is_resource(version: str, name: str) -> bool:
    return bool(model_class(version, name).has_resource_base())


@cache
def fhir_type_names() -> frozenset[str]:
    """Lower-cased names of the FHIR resource and data types of the R4B models (public
    words: a file named after one names no patient)."""
    return frozenset(n.lower() for n in _model_names("R4B"))


@cache
def resource_types(version: str) -> frozenset[str]:
    """Names of all resource types the models of ``version`` know (imports every model)."""
    return frozenset(n for n in _model_names(version) if _is_resource(version, n))


@cache
def _model_names(version: str) -> frozenset[str]:
    """Names of the models (resources and data types) of ``version``, without importing."""
    module = importlib.import_module(_package(version) + ".fhirtypes")
    names = set()
    for attr in dir(module):
        target = getattr(getattr(module, attr), "_model_klass", None)
        if not (attr.endswith("Type") and isinstance(target, str)):
            continue
        mod, cls = target.rsplit(".", 1)
        if cls == attr[:-4] and mod.rsplit(".", 1)[1] == cls.lower():
            names.add(cls)
    return frozenset(names)


@cache
def model_class(version: str, resource_type: str) -> Any:
    """The fhir.resources model class of ``resource_type`` in ``version`` (cached)."""
    module = importlib.import_module(f"{_package(version)}.{resource_type.lower()}")
    return getattr(module, resource_type)


def check_resource_version(resource: dict[str, Any], version: str, where: str) -> None:
    """Raise :class:`FHIRVersionError` when ``resource`` is plainly of another FHIR version.

    Looks at the resource type (R5-only, STU3-only) and at core profiles in ``meta.profile``.
    """
    rtype = resource.get("resourceType")
    label = str(rtype)  # the type only: an id may be an MRN (Bulk exports)
    found = None
    if rtype in R5_ONLY_TYPES:
        found = "R5"
    elif rtype in STU3_ONLY_TYPES:
        found = "STU3"
    else:
        meta = resource.get("meta")
        profiles = meta.get("profile") if isinstance(meta, dict) else None
        for profile in profiles if isinstance(profiles, list) else ():
            m = _PROFILE_VERSION.match(profile) if isinstance(profile, str) else None
            if m:
                found = _PROFILE_NAMES.get(m.group(1), _PROFILE_NAMES.get(m.group(1)[0]))
                break
    if found:
        raise FHIRVersionError(
            f"{where}: {label}: this resource is FHIR {found} input, but this reader "
            f"is configured for FHIR {version} (setting fhir_version); convert the data to "
            f"FHIR {version} first"
        )


@cache
def element_version_hint(resource_type: str, element: str) -> str:
    """`` (an R5 element)`` / `` (an STU3 element)`` when another release defines ``element``."""
    for package, name in (("fhir.resources", "R5"), ("fhir.resources.STU3", "STU3")):
        try:
            module = importlib.import_module(f"{package}.{resource_type.lower()}")
            fields = getattr(module, resource_type).model_fields.values()
        except (ImportError, AttributeError):
            continue
        if any(f.alias == element for f in fields):
            return f" (an element of FHIR {name}, not R4)"
    return ""
