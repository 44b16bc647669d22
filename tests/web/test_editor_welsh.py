"""Editors see and change an entry's Welsh answer; saving the English never loses the Welsh."""

from __future__ import annotations

from bot.testing.console import Csrf, Login
from bot.web.app import ConsoleApp
from bot.web.editor import KB
from tests.web.test_editor import (  # the editor tests' fixtures: demo content, real model
    ENTRY,
    _edit_form,
    _form,
    console_app,
    console_sections,
    kb_encoder,
)

__all__ = ["console_app", "console_sections", "kb_encoder"]  # fixtures used from here


async def test_the_form_shows_the_welsh_answer(login: Login, console_app: ConsoleApp) -> None:
    entry = await console_app[KB].get("report-pothole")
    editor = await login("editor")
    html = (await editor.get(ENTRY)).text
    assert '<legend>Welsh answer (<span lang="cy">Cymraeg</span>)' in html
    values = await _edit_form(editor)
    assert values["answer_cy_sms"] == entry.translations["cy"]["sms"]
    assert values["answer_cy_default"] == entry.translations["cy"]["default"]


async def test_saving_the_english_keeps_the_welsh(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    kb = console_app[KB]
    before = await kb.get("report-pothole")
    editor = await login("editor")
    values = await _edit_form(editor)
    new_sms = "Report a pothole at https://www.ashvale.gov.uk/report/pothole today."
    saved = await editor.post(
        ENTRY,
        data=_form(
            values, answer_sms=new_sms, action="save", reason="r", csrf_token=await csrf(editor)
        ),
    )
    assert saved.status_code == 200, saved.text
    after = await kb.get("report-pothole")
    assert after.answers["sms"] == new_sms
    assert after.translations == before.translations


async def test_a_welsh_answer_is_edited_and_checked(
    login: Login, csrf: Csrf, console_app: ConsoleApp
) -> None:
    kb = console_app[KB]
    editor = await login("editor")
    values = await _edit_form(editor, "/editor/entry/parking-permit-visitor")
    assert values["answer_cy_default"] == ""
    token = await csrf(editor)
    bad = await editor.post(
        "/editor/entry/parking-permit-visitor",
        data=_form(
            values,
            answer_cy_sms="Gweler http://parcio",
            action="save",
            reason="r",
            csrf_token=token,
        ),
    )
    assert bad.status_code == 422
    assert "translations.cy.default: the answer must not be empty" in bad.text
    welsh = "Prynwch drwyddedau ymwelwyr yn https://www.ashvale.gov.uk/parking/visitors."
    good = await editor.post(
        "/editor/entry/parking-permit-visitor",
        data=_form(
            values, answer_cy_default=welsh, action="save", reason="Cymraeg", csrf_token=token
        ),
    )
    assert good.status_code == 200, good.text
    saved = await kb.get("parking-permit-visitor")
    assert saved.translations == {"cy": {"default": welsh}}
    assert "translations" in (await kb.head("parking-permit-visitor")).changes
