"""``deepsalt view``: the map on an interactive web page served from this machine (``server``, ``page``).

The page (``static/``) is built from ``web/`` with npm and shipped inside the package, so viewing a map
needs no Node.js. Its public face is the command; ``server`` and ``page`` are internal.
"""

__all__: list[str] = []
