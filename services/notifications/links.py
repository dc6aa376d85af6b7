"""Where a notice's link points: one function builds every link, so that when the web pages land
(`/communities/...` on the web service) only this module changes.

The base is `CONSULT_PUBLIC_URL`; without it, the gateway's real address on this machine (its
port with the deployment's port offset), because a link to a port nobody listens on is a link
that does not work. Until the pages exist, a link names the API resource the notice is about.
"""
from __future__ import annotations

import os
from typing import Mapping

from services.common import config

# What a notice can be about -> the API collection that serves it (GET .../{collection}/{id}).
API_COLLECTIONS = {
    "proposal": "proposals", "consultation": "consultations", "meeting": "meetings", "minutes": "minutes",
    "ballot": "ballots", "plan": "action-plans", "case": "cases",
}


def public_url(environ: Mapping[str, str] | None = None) -> str:
    """The base every link starts with, without a trailing slash."""
    env = os.environ if environ is None else environ
    configured = (env.get("CONSULT_PUBLIC_URL") or "").strip()
    if configured:
        return configured.rstrip("/")
    return f"http://127.0.0.1:{config.load(env).http_port('gateway')}"


def link(base: str, community: str, kind: str, ident: str) -> str:
    """The link to one thing of a community (kind: a key of API_COLLECTIONS)."""
    return f"{base}/api/v1/communities/{community}/{API_COLLECTIONS[kind]}/{ident}"


def preferences_link(base: str, community: str) -> str:
    return f"{base}/api/v1/communities/{community}/me/preferences"
