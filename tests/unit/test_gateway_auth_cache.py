"""The gateway's sign-in cache: revocation events empty it at once, and an answer asked for before a
revocation is not cached after it."""
from services.gateway.auth_cache import AuthCache


def principal(person: str, token: str) -> dict:
    return {"person": person, "token": token, "community": "c", "roles": []}


def test_a_token_revocation_forgets_that_token_only():
    cache = AuthCache()
    cache.put("secret-a", principal("p1", "t1"), cache.generation)
    cache.put("secret-b", principal("p1", "t2"), cache.generation)
    cache.apply({"type": "TokenRevoked", "aggregate": {"id": "t1"}})
    assert cache.get("secret-a") is None and cache.get("secret-b")["token"] == "t2"


def test_a_role_revocation_forgets_every_sign_in_of_the_person():
    cache = AuthCache()
    cache.put("secret-a", principal("p1", "t1"), cache.generation)
    cache.put("secret-b", principal("p1", "t2"), cache.generation)
    cache.put("secret-c", principal("p2", "t3"), cache.generation)
    cache.apply({"type": "PersonRoleRevoked", "aggregate": {"id": "p1"}})
    assert cache.get("secret-a") is None and cache.get("secret-b") is None and cache.get("secret-c")
    cache.apply({"type": "PersonRoleGranted", "aggregate": {"id": "p2"}})
    assert cache.get("secret-c")


def test_an_answer_from_before_a_revocation_is_not_cached():
    cache = AuthCache()
    asked_at = cache.generation
    cache.apply({"type": "TokenRevoked", "aggregate": {"id": "t1"}})  # heard while the RPC was on its way
    cache.put("secret-a", principal("p1", "t1"), asked_at)
    assert cache.get("secret-a") is None


def test_entries_expire():
    cache = AuthCache(ttl=0)
    cache.put("secret-a", principal("p1", "t1"), cache.generation)
    assert cache.get("secret-a") is None
