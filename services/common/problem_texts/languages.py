"""The languages problems are written in: Simplified Chinese, the default, and English."""
ZH, EN = "zh-CN", "en"
LANGUAGES = (ZH, EN)
DEFAULT = ZH
