"""The demo accounts: ``demo_setup`` creates them and the login page lists them."""

# (username, password, description); public on purpose, this is a demo.
DEMO_ACCOUNTS = [
    ("alice", "alice-demo", "in group staff"),
    ("bob", "bob-demo", "in group staff"),
    ("admin", "admin-demo", "superuser, for /admin/"),
]
STAFF_GROUP = "staff"
