"""Renders mail from templates/email/NAME.txt (and NAME.html when present)."""

from __future__ import annotations

from typing import Any

import jinja2

from portal.outbox import Mail


class MailRenderer:
    def __init__(self, env: jinja2.Environment) -> None:
        self.env = env

    def render(self, name: str, *, purpose: str, to: str, subject: str, **context: Any) -> Mail:
        text = self.env.get_template(f"email/{name}.txt").render(subject=subject, **context)
        try:
            html_template = self.env.get_template(f"email/{name}.html")
        except jinja2.TemplateNotFound:
            html = None
        else:
            html = html_template.render(subject=subject, **context)
        return Mail(purpose=purpose, to=to, subject=subject, text=text, html=html)
