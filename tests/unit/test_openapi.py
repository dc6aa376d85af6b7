"""The OpenAPI document is generated from the routing table; it must be well-formed."""
from services.gateway import openapi, routes_load


def test_operation_ids_are_unique_and_every_operation_is_described():
    routes_load.load_all()
    doc = openapi.document()
    ops = [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()]
    assert len(ops) >= 30
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids))
    for path, method, op in ops:
        assert op["summary"] and op["tags"], (method, path)
        assert "default" in op["responses"], "every operation documents its problem responses"
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert declared == set(part[1:-1] for part in path.split("/") if part.startswith("{")), path
