"""Sphinx fixes for the rendered book; loaded by ``_config.yml`` (``sphinx.local_extensions``).

Sphinx 7.4 can write an inline ``<script>`` that an extension added twice into every page: once
with the file name ``None`` and once with ``''``, which it does not see as the same script
(sphinx-doc/sphinx#13402, fixed in Sphinx 8.2; Jupyter Book 1.0 needs Sphinx 7). sphinx-thebe's
``const THEBE_JS_URL = ...`` then throws "Identifier 'THEBE_JS_URL' has already been declared" on
every page, which the browser check (tools/browser_check.py) reports. This drops the repeats.
"""

from __future__ import annotations


def drop_repeated_scripts(app, pagename, templatename, context, doctree) -> None:
    """Keep the first of any scripts with the same file, priority and attributes (body included)."""
    scripts = context.get("script_files")
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        attributes = getattr(script, "attributes", {}) or {}
        key = (getattr(script, "filename", script) or "", getattr(script, "priority", 500),
               tuple(sorted((name, str(value)) for name, value in attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx restores its own list before the next page


def setup(app):
    # After the extensions (myst-nb, sphinx-thebe) have added their per-page scripts.
    app.connect("html-page-context", drop_repeated_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
