"""Which evidence files the platform keeps: the media type read from the bytes, never the claim.

Evidence is served back to every member of the community (the board, a plan's reports). A file
whose bytes are HTML, SVG or a script, kept under whatever type the uploader claimed, is stored
cross-site scripting the day any client renders it inline. So the upload is refused unless the
file's own signature is one of the allow-list of `domain.sniff` (the same list that decides how a
file is served), and a declared type that is not the one the bytes show is refused rather than
silently corrected, so an uploader learns their file is not what they think it is.
"""
from __future__ import annotations

from services.common.errors import InvalidInput

from .domain import DOWNLOAD, EVIDENCE_TYPES, sniff


def evidence_media_type(data: bytes, declared) -> str:
    """The media type to keep for an evidence file: the sniffed one, which a declared type (if
    any) must name. Refuses (422) anything outside the allow-list, whatever it claims to be."""
    found, _extension = sniff(data)
    if (found, _extension) == DOWNLOAD:
        allowed = ", ".join(media_type for media_type, _, _ in EVIDENCE_TYPES)
        raise InvalidInput.coded("actions.evidence_file_one_contents", allowed=allowed)
    if declared is not None and (not isinstance(declared, str) or declared.strip().lower() != found):
        raise InvalidInput.coded("actions.media_type_does_match", found=found)
    return found
