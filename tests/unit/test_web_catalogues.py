"""Both catalogues of the web pages are complete: every message id the templates and the code use
has a non-empty translation in zh-CN and in en (issue 14: "no message id without a translation")."""
from __future__ import annotations

from services.web import catalogue, i18n


def test_the_pages_use_many_message_ids_from_templates_and_code():
    ids = catalogue.used_ids()
    assert len(ids) > 100
    assert "What needs me now" in ids  # a template's
    assert "This form has expired or did not come from this site. Please try again." in ids  # the code's
    assert "Owners, ordinary matter (Civil Code art. 278)" in ids  # a code table's


def test_every_message_id_has_a_zh_cn_translation():
    assert catalogue.missing("zh-CN") == []


def test_every_message_id_has_an_en_translation():
    assert catalogue.missing("en") == []


def test_the_zh_cn_catalogue_is_chinese_not_a_copy_of_the_ids():
    zh = i18n.catalogue("zh-CN")
    copied = [m for m in catalogue.used_ids() if zh.get(m) == m and any(c.isalpha() for c in m)
              and not m.isupper()]
    assert copied == []


def test_language_negotiation_cookie_then_accept_language_then_zh_cn():
    assert i18n.negotiate(None, None) == "zh-CN"
    assert i18n.negotiate(None, "en-GB,en;q=0.9") == "en"
    assert i18n.negotiate(None, "fr-FR, en;q=0.5, zh-TW;q=0.8") == "zh-CN"
    assert i18n.negotiate("en", "zh-CN") == "en"
    assert i18n.negotiate("xx", "de") == "zh-CN"
