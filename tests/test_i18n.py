"""Every user-facing string has its Simplified Chinese translation."""

from __future__ import annotations

from tanhui import catalogue
from tanhui.i18n import negotiate, translate


def test_every_marked_string_is_translated() -> None:
    todo = catalogue.missing()
    assert todo == {}, "run `python -m tanhui.catalogue update` and translate:\n" + "\n".join(
        f"{where}: {text}" for text, where in todo.items()
    )


def test_placeholders_survive_translation() -> None:
    assert translate("No {what} {id}.", "zh-CN", what="项目", id="AJ0001") == "不存在项目 AJ0001。"
    assert translate("No {what} {id}.", "en", what="project", id="AJ0001") == "No project AJ0001."


def test_locale_negotiation() -> None:
    assert negotiate(None) == "zh-CN"
    assert negotiate("en-US,en;q=0.9") == "en"
    assert negotiate("fr-FR, en;q=0.5, zh;q=0.8") == "zh-CN"
    assert negotiate("en", cookie="zh-CN") == "zh-CN"
    assert negotiate("de") == "zh-CN"
