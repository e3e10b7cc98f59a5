# Shortcuts for dev.py, which runs noxfile.py's sessions (and needs only Python 3.11+ and git).
# Pass options through ARGS, e.g.:
#   make test ARGS="--python 3.13 --django 6.1 --db sqlite -- -k inbox"
#   make demo ARGS="--port 8001"
#   make statemachine STATEFUL_EXAMPLES=5000
PYTHON ?= python3
ARGS ?=
# Examples per backend for `make statemachine` (CI runs 25).
STATEFUL_EXAMPLES ?= 1000

.PHONY: test demo lint docs bench statemachine

test:
	$(PYTHON) dev.py test $(ARGS)

# The model-checked state machine alone, long: the database backend on SQLite, and Redis
# when it answers.
statemachine:
	PIGEONHOLE_STATEFUL_EXAMPLES=$(STATEFUL_EXAMPLES) $(PYTHON) dev.py test --db sqlite -- tests/backends/test_state_machine.py

demo:
	$(PYTHON) dev.py demo $(ARGS)

lint:
	$(PYTHON) dev.py lint

docs:
	$(PYTHON) dev.py docs

bench:
	$(PYTHON) dev.py bench $(ARGS)
