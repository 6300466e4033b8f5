"""Reports of a release: the shareable PDF, the custodian's validation PDF and the audit record."""

from fhirsynth.report.audit import VerifyResult, build_audit, verify_release, write_json_atomic
from fhirsynth.report.release import ReportPaths, write_reports

__all__ = [
    "ReportPaths",
    "VerifyResult",
    "build_audit",
    "verify_release",
    "write_json_atomic",
    "write_reports",
]
