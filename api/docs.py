"""``/v1/docs``: Swagger UI on the OpenAPI document, from the files the swagger-ui-bundle package
ships, so the page loads from this API alone (no CDN: API hosts often reach no internet)."""

from __future__ import annotations

import secrets

from flask import Blueprint, Response, render_template_string, send_from_directory, url_for
from swagger_ui_bundle import swagger_ui_path
from werkzeug.exceptions import NotFound

from api.auth import public

bp = Blueprint("docs", __name__, url_prefix="/v1/docs")

# What the page loads, and the source maps a browser's developer tools ask for; nothing else of
# the package (its sample page points at a petstore on the internet).
ASSETS = frozenset(
    {
        "swagger-ui-bundle.js",
        "swagger-ui-bundle.js.map",
        "swagger-ui.css",
        "swagger-ui.css.map",
        "favicon-32x32.png",
    }
)

# The browser itself refuses any request the page would make beyond this API (the CSS's icons
# are data: URLs); the one inline script, the initializer, carries the nonce.
_POLICY = (
    "default-src 'none'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)

# validatorUrl null: Swagger UI otherwise sends the document to validator.swagger.io.
# The response interceptor: the packaged Swagger UI (4.x) refuses to render any version but
# 3.0.n, and what this document uses of 3.1 (pydantic's schemas) it shows well enough as 3.0.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>KVM orchestrator API</title>
  <link rel="stylesheet" href="{{ url_for('docs.asset', filename='swagger-ui.css') }}">
  <link rel="icon" type="image/png" sizes="32x32"
        href="{{ url_for('docs.asset', filename='favicon-32x32.png') }}">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{{ url_for('docs.asset', filename='swagger-ui-bundle.js') }}"></script>
  <script nonce="{{ nonce }}">
    const documentUrl = {{ document_url|tojson }};
    window.ui = SwaggerUIBundle({
      url: documentUrl,
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      layout: "BaseLayout",
      responseInterceptor: (response) => {
        if (new URL(response.url, window.location.href).pathname === documentUrl) {
          const spec = JSON.parse(response.text);
          if (String(spec.openapi).startsWith("3.1.")) {
            spec.openapi = "3.0.3";
            response.text = JSON.stringify(spec);
          }
        }
        return response;
      },
    });
  </script>
</body>
</html>
"""


@bp.get("")
@public
def page() -> Response:
    """Interactive documentation of this API (Swagger UI)"""
    nonce = secrets.token_urlsafe(16)
    html = render_template_string(_PAGE, document_url=url_for("meta.openapi"), nonce=nonce)
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = _POLICY.format(nonce=nonce)
    return response


@bp.get("/<filename>")
@public
def asset(filename: str) -> Response:
    """A static file of the documentation page"""
    if filename not in ASSETS:
        raise NotFound(f"no documentation asset {filename!r}")
    return send_from_directory(swagger_ui_path, filename, max_age=3600)
