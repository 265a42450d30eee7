"""``/v1/docs`` over HTTP on a real stack with tokens on: Swagger UI from the API's own files,
public like the OpenAPI document it shows, asking nothing of any other host."""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
import requests

from tests.support import services
from tests.support.services import RunningStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: str) -> Iterator[RunningStack]:
    # A token exists, so only public routes answer a caller without one. No worker: the page
    # and its document are the API's alone.
    tokens = {secrets.token_urlsafe(24): ["jobs:read"]}
    tmp = tmp_path_factory.mktemp("docs")
    with services.test_stack(tmp, redis_server, {}, api_tokens=tokens) as running:
        yield running


class References(HTMLParser):
    """Every URL the page names in an attribute, and its inline scripts with their nonces."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (tag, url)
        self.scripts: list[tuple[str | None, str]] = []  # (nonce, text)
        self._nonce: str | None = None
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [(tag, values[name] or "") for name in ("src", "href") if name in values]
        if tag == "script" and "src" not in values:
            self._in_script, self._nonce = True, values.get("nonce")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = self._in_script and tag != "script"

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append((self._nonce, data))


def get(stack: RunningStack, path: str) -> requests.Response:
    """Without a token, as a browser opening the page sends none."""
    return requests.get(f"{stack.settings.resolved_api_url}{path}", timeout=30)


def page(stack: RunningStack) -> tuple[requests.Response, References]:
    response = get(stack, "/v1/docs")
    references = References()
    references.feed(response.text)
    return response, references


def test_the_page_answers_without_a_token(stack: RunningStack) -> None:
    assert get(stack, "/v1/jobs").status_code == 401  # tokens are on

    response, references = page(stack)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert '<div id="swagger-ui">' in response.text
    assert len(references.urls) == 3 and len(references.scripts) == 1


def test_the_page_names_no_other_host(stack: RunningStack) -> None:
    response, references = page(stack)

    assert not re.search(r"(?i)(https?:)?//", response.text.replace("<!DOCTYPE html>", ""))
    for tag, url in references.urls:
        assert url.startswith("/v1/docs/") and not url.startswith("//"), (tag, url)
    # Swagger UI sends the document to validator.swagger.io unless told not to.
    assert "validatorUrl: null" in references.scripts[0][1]


def test_every_file_the_page_loads_answers_with_its_content_type(stack: RunningStack) -> None:
    _, references = page(stack)
    loaded = {}
    for tag, url in references.urls:
        response = get(stack, url)
        assert response.status_code == 200, url
        loaded[Path(url).name] = response.headers["Content-Type"].split(";")[0]
        if tag == "script":
            assert "SwaggerUIBundle" in response.text
    assert loaded == {
        "swagger-ui.css": "text/css",
        "favicon-32x32.png": "image/png",
        "swagger-ui-bundle.js": "text/javascript",
    }


def test_the_page_shows_the_openapi_document_the_api_serves(stack: RunningStack) -> None:
    _, references = page(stack)
    script = references.scripts[0][1]

    document_url = re.search(r'const documentUrl = "([^"]+)";', script)
    assert document_url is not None and document_url.group(1) == "/v1/openapi.json"
    assert "url: documentUrl" in script
    document = get(stack, document_url.group(1))
    assert document.status_code == 200
    assert document.json()["paths"]["/v1/docs"]["get"]["security"] == []


def test_the_browser_is_told_to_reach_no_other_host(stack: RunningStack) -> None:
    response, references = page(stack)
    policy = dict(
        directive.strip().split(" ", 1)
        for directive in response.headers["Content-Security-Policy"].split(";")
    )
    nonce = references.scripts[0][0]

    assert policy["default-src"] == "'none'"
    assert policy["connect-src"] == policy["style-src"] == "'self'"
    assert policy["script-src"] == f"'self' 'nonce-{nonce}'"
    assert nonce and nonce != page(stack)[1].scripts[0][0]  # one per response


def test_files_of_the_package_the_page_does_not_use_are_not_served(stack: RunningStack) -> None:
    # The package's own index.html and initializer point at a petstore on the internet.
    for name in ("index.html", "swagger-initializer.js", "swagger-ui.js"):
        response = get(stack, f"/v1/docs/{name}")
        assert response.status_code == 404, name
        assert response.headers["Content-Type"] == "application/problem+json"


def test_a_browser_renders_every_operation_of_the_document(
    stack: RunningStack, tmp_path: Path
) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (Debian package chromium)")
    url = f"{stack.settings.resolved_api_url}/v1/docs"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--virtual-time-budget=20000",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    ).stdout

    rendered = set(re.findall(r'class="opblock-summary-path" data-path="([^"]+)"', dom))
    assert "Unable to render this definition" not in dom
    assert rendered == set(get(stack, "/v1/openapi.json").json()["paths"])
