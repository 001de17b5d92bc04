# Two set-up commands: `make demo` and `make test`. Both work on a fresh machine with Python 3.11+, git and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test

demo: $(STAMP)
	$(BIN)/m365-migrate demo

test: $(STAMP) $(VENV)/.system-deps
	$(BIN)/python -m pytest

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

# System services the tests start on loopback: Apache httpd with mod_dav (the independent WebDAV server)
# and Chromium (renders the HTML report). Installed from the distribution when missing.
$(VENV)/.system-deps: | $(BIN)/python
	@if [ ! -x /usr/sbin/apache2 ] || ! command -v chromium >/dev/null 2>&1; then \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
			apache2 apache2-utils chromium >/dev/null; \
	fi
	touch $@
