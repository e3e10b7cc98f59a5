# Shortcuts for dev.py, which does the real work (and needs only Python 3.11+ and git).
# Pass options through ARGS, e.g.:
#   make test ARGS="--python 3.13 --django 6.1 --db sqlite -- -k inbox"
#   make demo ARGS="--port 8001"
PYTHON ?= python3
ARGS ?=

.PHONY: test demo lint docs bench

test:
	$(PYTHON) dev.py test $(ARGS)

demo:
	$(PYTHON) dev.py demo $(ARGS)

lint:
	$(PYTHON) dev.py lint

docs:
	$(PYTHON) dev.py docs

bench:
	$(PYTHON) dev.py bench $(ARGS)
