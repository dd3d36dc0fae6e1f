"""Jinja2 templates of wggw (installed as the package `wggw.templates`)."""
