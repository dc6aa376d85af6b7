"""The canonical JSON encoder every service uses (envelopes, checkpoints, the export and its
verification, webhook bodies). It is defined in the pure `rules` package, which hashes rolls and
seals with it and may import nothing of `services`; this module is where services import it from."""
from __future__ import annotations

from rules.canonical import canonical_bytes, canonical_text

__all__ = ["canonical_bytes", "canonical_text"]
