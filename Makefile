# Set-up and everyday commands. Everything a fresh Debian machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SAMPLE ?= samples/clean-13x.pcap

.PHONY: run test venv test-deps tshark clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)
	$(PIP) install -q -e .

run: venv
	rm -rf out
	$(VENV)/bin/netdump-analyzer extract $(SAMPLE) -o out; status=$$?; \
	  if [ $$status -ne 0 ] && [ $$status -ne 3 ]; then exit $$status; fi

# tshark (Debian package) is needed by the dissector tests; install it when missing.
tshark:
	@command -v tshark >/dev/null 2>&1 || { \
	  echo "installing tshark (Debian package)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true; \
	  apt-get update -qq && apt-get install -y -qq tshark >/dev/null; }

test-deps: $(PY) tshark
	$(PIP) install -q -e '.[test]'

test: test-deps
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .hypothesis
