"""Signed sign-in tokens: what the directory signs, what a gateway accepts without asking it, and
when it must ask instead (forged, tampered, expired, revoked, or its revoked list not trusted)."""
import base64
from dataclasses import replace

import pytest

from services.common import config, signed_token
from services.common.errors import Unauthorized
from services.gateway import auth_cache
from services.gateway.auth_cache import AuthCache, Principal, SignedSignIns

KEY = signed_token._from_seed(b"\x01" * 32)
OTHER = signed_token._from_seed(b"\x02" * 32)
PUBLIC = signed_token.public_key_text(KEY)


T1, T2, T9 = (f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 9))
P1, P2, C1 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222", \
    "cccccccc-cccc-4ccc-8ccc-cccccccccccc"


def token(key=KEY, **claims):
    fields = dict(token_id=T1, person=P1, community=C1, expires_at="2999-01-01T00:00:00.000000Z")
    return signed_token.sign(key, **dict(fields, **claims))


def test_a_token_carries_its_claims_under_the_directory_signature():
    found = signed_token.claims(token(), signed_token.public_key(PUBLIC))
    assert found == {"t": T1, "p": P1, "c": C1, "e": "2999-01-01T00:00:00.000000Z"}
    assert token().startswith("cst_1.")
    admin = signed_token.claims(token(community=None, expires_at=None), signed_token.public_key(PUBLIC))
    assert admin["c"] is None and admin["e"] is None


def _changed(text: str, at: int) -> str:
    """The token with one byte of its packed claims (at < 57) or signature changed."""
    raw = bytearray(base64.urlsafe_b64decode(text[len(signed_token.PREFIX):] + "=="))
    raw[at] ^= 0x01
    return signed_token.PREFIX + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def _tampered_claims(text: str) -> str:
    return _changed(text, 20)  # a bit of the person's id, the signature left as it was


@pytest.mark.parametrize("presented", [
    token(OTHER),  # forged: signed with a key that is not the directory's
    _tampered_claims(token()),  # claims changed after signing
    _changed(token(), 0),  # the flags: claims of another shape
    _changed(token(), 80),  # signature changed
    token()[:-3],  # cut short
    token() + "AAAA",  # trailing bytes
    "cst_" + "x" * 43,  # an opaque token of before
    "cst_1.!!!???",  # not base64url
    token() + "A" * 200,  # too long to be ours
    "",
])
def test_anything_but_an_intact_token_of_this_key_has_no_claims(presented):
    assert signed_token.claims(presented, signed_token.public_key(PUBLIC)) is None


def test_a_token_is_short_enough_to_paste_and_other_ids_are_not_signed():
    assert len(token()) <= 200 and len(token()) == 168
    admin = token(person="admin-" + "0" * 8 + "-0000-4000-8000-" + "0" * 12, community=None)
    assert signed_token.claims(admin, signed_token.public_key(PUBLIC))["p"].startswith("admin-")
    assert signed_token.sign(KEY, token_id="t1", person="p1", community="c1", expires_at=None) is None
    assert signed_token.sign(KEY, token_id=T1, person=P1, community=C1, expires_at="2999-01-01") is None
    assert signed_token.sign(KEY, token_id=T1, person=P1.replace("-", ""), community=C1, expires_at=None) is None


def test_the_key_comes_from_the_setting_or_one_file_of_the_data_folder(tmp_path):
    settings = replace(config.load({"CONSULT_DATA_DIR": str(tmp_path)}), token_key=None)
    made = signed_token.private_key(settings)
    assert (tmp_path / signed_token.KEY_FILE).stat().st_mode & 0o777 == 0o600
    assert signed_token.public_key_text(signed_token.private_key(settings)) == signed_token.public_key_text(made)
    given = replace(settings, token_key="k" * 40)
    assert signed_token.public_key_text(signed_token.private_key(given)) != signed_token.public_key_text(made)
    with pytest.raises(RuntimeError, match="CONSULT_TOKEN_KEY"):
        signed_token.private_key(replace(settings, token_key="short"))


def synced(revoked=()) -> SignedSignIns:
    signed = SignedSignIns()
    signed.connected()
    connection = signed.to_sync()
    signed.synced(connection, {"key": PUBLIC, "revoked": list(revoked)})
    return signed


def test_a_synced_gateway_accepts_a_signed_token_without_asking():
    assert synced().check(token()) == {"person": P1, "community": C1, "token": T1,
                                       "expires_at": "2999-01-01T00:00:00.000000Z", "platform_admin": False}
    admin = synced().check(token(community=None, expires_at=None))
    assert admin["platform_admin"] and admin["community"] is None


def test_forged_expired_and_revoked_tokens_go_to_the_directory():
    signed = synced(revoked=[T9])
    assert signed.check(token(OTHER)) is None
    assert signed.check(_tampered_claims(token())) is None
    assert signed.check(token(expires_at="2000-01-01T00:00:00.000000Z")) is None
    assert signed.check(token(token_id=T9)) is None  # revoked before the gateway connected
    signed.revoke(T1)  # a TokenRevoked heard on the connection
    assert signed.check(token()) is None


def test_nothing_is_trusted_before_the_list_is_loaded_on_this_connection():
    signed = SignedSignIns()
    assert signed.to_sync() == 0 and signed.check(token()) is None  # not listening
    signed.connected()
    first = signed.to_sync()
    assert first and signed.to_sync() == 0  # one request asks; the others meanwhile ask the directory
    assert signed.check(token()) is None
    signed.connected()  # the listener reconnected while the list was being asked for
    signed.synced(first, {"key": PUBLIC, "revoked": []})
    assert signed.check(token()) is None  # a list asked for on an earlier connection is not taken
    signed.synced(signed.to_sync(), {"key": PUBLIC, "revoked": []})
    assert signed.check(token())


def test_a_failed_sync_is_asked_again_later(monkeypatch):
    signed = SignedSignIns()
    signed.connected()
    assert signed.to_sync()
    signed.sync_failed()
    assert signed.to_sync() == 0  # not by every request while the directory cannot answer
    monkeypatch.setattr(auth_cache, "SYNC_RETRY_S", 0.0)
    signed.sync_failed()
    assert signed.to_sync()


def test_a_revocation_heard_before_a_reconnection_is_kept_through_it():
    """The listener killed between a revocation and a list that does not have it yet: the id heard
    stays refused (the list is added to, never emptied)."""
    signed = synced()
    signed.revoke(T1)
    signed.disconnected()
    assert signed.check(token(token_id=T2)) is None  # disconnected: every token asks the directory
    signed.connected()
    signed.synced(signed.to_sync(), {"key": PUBLIC, "revoked": []})
    assert signed.check(token()) is None and signed.check(token(token_id=T2))


def test_a_connection_not_seen_alive_lately_is_not_trusted(monkeypatch):
    signed = synced()
    assert signed.check(token())
    monkeypatch.setattr(auth_cache, "ALIVE_S", 0.0)
    assert signed.check(token()) is None


def test_the_cache_forgetting_a_token_refuses_it_signed_too():
    cache = AuthCache()
    cache.signed = synced()
    cache.apply({"type": "TokenRevoked", "aggregate": {"id": T1}})
    assert cache.signed.check(token()) is None
    cache.forget(token_id=T2)  # the instance that took the revoking request
    assert cache.signed.check(token(token_id=T2)) is None


def test_roles_are_asked_only_when_a_route_reads_them():
    asked = []

    def load():
        asked.append(1)
        return {"person": P1, "token": T1, "roles": [{"role": "grid_leader", "scope": None}]}

    principal = Principal(synced().check(token()), load)
    assert principal["person"] == P1 and principal.get("community") == C1 and asked == []
    assert principal.get("roles") == [{"role": "grid_leader", "scope": None}] and asked == [1]
    assert principal["roles"] and asked == [1]  # asked once per request
    admin = Principal(synced().check(token(community=None)), load)
    assert admin.get("roles") == [{"role": "platform_admin", "scope": None}] and asked == [1]


def test_roles_of_another_sign_in_are_refused():
    principal = Principal(synced().check(token()), lambda: {"person": P2, "token": T1, "roles": []})
    with pytest.raises(Unauthorized):
        principal.get("roles")
