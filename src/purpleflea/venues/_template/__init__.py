"""Template for a new venue: copy this folder to ``venues/<name>/`` and fill in each file.

Not a venue itself: the registry skips folders whose name starts with ``_``, and this package
defines no ``VENUE``. Each file has one fixed role; its docstring says what goes in it, and
the venue named beside it is a complete example to read first.

In the copy, this ``__init__.py`` builds the one object the registry reads::

    VENUE = Venue(
        name="<name>",                      # the folder name
        display_name=DISPLAY_NAME,
        exchanges=(
            Exchange(
                id=EXCHANGE,
                display_name=DISPLAY_NAME,
                coverage=COVERAGE,
                price=PRICE,                            # constants.py: what `price` is
                normalize=normalize,                    # normalizer.py
                connections=connection.connections,     # connection.py
                market=market_name,                     # symbol -> "BTC-PERP" or None
                sim=SIM,                                # constants.py, or Absent("why")
            ),
        ),
        catalog=catalog.SOURCES,                        # catalog.py, or Absent("why")
        open_interest=open_interest.SOURCES,            # open_interest.py, or Absent("why")
        history=history.HISTORY,                        # history.py, or Absent("why")
        repair=repair.SOURCE,                           # repair.py, or Absent("why")
    )

A part the venue does not have is ``Absent("the reason")``, never left out, and its file is
then deleted from the copy. ``tests/venues/test_registry.py`` checks that every venue states
every part and that each part comes from its own folder; ``tests/venues/`` is also where the
normalizer's frame fixtures and tests go (see ``tests/venues/test_okx.py``).

Example: ``venues/okx/__init__.py``.
"""
