"""
Brokers carry "something changed" wake-ups from wherever a change commits to
every process holding a stream. ``base.py`` is the contract; ``publish.py``
turns the app's signals into wake-ups.
"""
