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

# System services the tests start on loopback: Apache httpd with mod_dav (the independent WebDAV server),
# Chromium (renders the HTML report) and Dovecot's IMAP server (the mail target: the tests run their own
# unprivileged instance on a free loopback port with a generated config; a system Dovecot that the package may
# start on 143/993 is neither needed nor touched). Installed from the distribution when missing. While another
# apt/dpkg run holds the package manager's locks, tools/apt_wait.py waits for them (at most APT_WAIT seconds,
# saying who holds them), then installs.
APT_GET  ?= apt-get
APT_WAIT ?= 600
APT_LOCKS ?= /var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock
SYSTEM_DEPS_MISSING ?= $(shell [ -x /usr/sbin/apache2 ] && [ -x /usr/sbin/dovecot ] && [ -x /usr/lib/dovecot/imap ] \
	&& command -v chromium >/dev/null 2>&1 || echo yes)
APT_WAITED = $(SUDO) $(PYTHON) tools/apt_wait.py --timeout $(APT_WAIT) $(addprefix --lock ,$(APT_LOCKS)) --

$(VENV)/.system-deps: Makefile | $(BIN)/python
	@if [ -n "$(SYSTEM_DEPS_MISSING)" ]; then \
		$(APT_WAITED) $(APT_GET) update -qq && \
		$(APT_WAITED) env DEBIAN_FRONTEND=noninteractive $(APT_GET) -o DPkg::Lock::Timeout=$(APT_WAIT) \
			install -y -qq --no-install-recommends apache2 apache2-utils chromium dovecot-imapd >/dev/null; \
	fi
	touch $@
