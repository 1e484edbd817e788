# The two commands a newcomer needs: `make demo` and `make test`.
# Both build their own virtual environment in .venv on first use.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# PC/SC for the contact-card tests: pcscd with the vsmartcard-vpcd virtual reader driver,
# pcsc-tools' ATR list; pyscard (in requirements-dev.txt) builds against libpcsclite-dev
# with swig, so these come before the virtual environment.
PCSC := /usr/sbin/pcscd
PCSC_PACKAGES := pcscd vsmartcard-vpcd pcsc-tools libpcsclite-dev swig

.PHONY: test demo bench clean translations

# The host packages (pyproject.toml: loyalty.protocol, .backend, .tools, .sim, .testing) are
# installed in editable mode: they run from this checkout, and a change to pyproject.toml
# (a new package, a new command) installs them again.
$(STAMP): requirements-dev.txt pyproject.toml | $(PCSC)
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt --editable .
	touch $(STAMP)

# The dashboard's browser test drives Debian's Chromium (Playwright never downloads one).
CHROMIUM := /usr/bin/chromium

$(PCSC):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $(PCSC_PACKAGES)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium

# The languages (i18n/): each .po is compiled to its .mo by the build, never committed.
# After changing a text in the code, `make translations` extracts what the code marks
# (i18n/babel.cfg) and updates each language's .po; then translate what is new in
# i18n/locale/it/LC_MESSAGES/messages.po (tests/backend/test_languages.py says what is missing).
MO := $(patsubst %.po,%.mo,$(wildcard i18n/locale/*/LC_MESSAGES/messages.po))

%.mo: %.po $(STAMP)
	$(BIN)/pybabel compile --statistics -i $< -o $@

translations: $(STAMP)
	mkdir -p build
	$(BIN)/pybabel extract -F i18n/babel.cfg -k N_ -k N_plural:1,2 -k lazy --no-location --sort-output \
		-o build/messages.pot .
	$(BIN)/pybabel update -i build/messages.pot -d i18n/locale --no-fuzzy-matching --ignore-obsolete \
		--width 100

# Prints its wall time: it must stay under 60 minutes on the project's 2-core machine (CI stops at 90).
test: $(STAMP) $(CHROMIUM) $(MO)
	@start=$$(date +%s); $(BIN)/python -m pytest -q tests; rc=$$?; \
	echo "make test: wall time $$(( $$(date +%s) - start )) s"; exit $$rc

demo: $(STAMP) $(MO)
	$(BIN)/python demo/demo.py

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build
