"""`charrnn serve`: a model kept loaded behind a local HTTP API, and a page to write with.

- ``api.py`` owns what ``POST /v1/generate`` accepts and answers (no HTTP in it);
- ``server.py`` owns HTTP: routes, limits, JSON errors, concurrency and stopping;
- ``page.py`` fills in the writing page served at ``/`` (its HTML, CSS and script:
  ``charrnn/pages/serve.*``).
"""
