"""Evidence media types come from the bytes, against an allow-list (issue 12, finding 8)."""
import pytest

from services.actions.domain import sniff
from services.actions.media import evidence_media_type
from services.common.errors import InvalidInput

FILES = {
    "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    "image/png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "application/pdf": b"%PDF-1.7\n%\xe2\xe3",
}


@pytest.mark.parametrize("kind", sorted(FILES))
def test_an_allowed_file_is_known_by_its_bytes_and_may_be_declared(kind):
    assert sniff(FILES[kind])[0] == kind
    assert evidence_media_type(FILES[kind], None) == kind
    assert evidence_media_type(FILES[kind], kind.upper()) == kind


@pytest.mark.parametrize("data", [
    b"<!DOCTYPE html><script>alert(1)</script>", b"<svg xmlns='http://www.w3.org/2000/svg' onload='x()'/>",
    b"\xef\xbb\xbf<html>", b"MZ\x90\x00", b"just some text", b"\xff\xd8",
    b"GIF89a\x01\x00", b"\x00\x00\x00\x18ftypheic",  # not (yet) on the list
])
def test_anything_else_is_refused_whatever_it_claims(data):
    for declared in (None, "image/jpeg", "text/html"):
        with pytest.raises(InvalidInput, match="must be one of"):
            evidence_media_type(data, declared)


def test_a_declared_type_the_bytes_do_not_show_is_refused():
    for declared in ("text/html", "image/png", "application/octet-stream", 7):
        with pytest.raises(InvalidInput, match="its contents are image/jpeg"):
            evidence_media_type(FILES["image/jpeg"], declared)
