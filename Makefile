# Set-up and everyday commands. Everything a fresh Debian machine needs is installed from here.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
SAMPLE ?= samples/clean-13x.pcap

.PHONY: run test venv test-deps tshark clean fuzz

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)
	$(PIP) install -q -e .

run: venv
	rm -rf out
	$(VENV)/bin/netdump-analyzer extract $(SAMPLE) -o out; status=$$?; \
	  if [ $$status -ne 0 ] && [ $$status -ne 3 ]; then exit $$status; fi
	@find out -name 'info.*' | sort | while read -r f; do echo "== $$f"; cat "$$f"; \
	  $(VENV)/bin/netdump-analyzer inspect "$$f" || [ $$? -eq 3 ] || exit 1; done

# The dissector tests need tshark; the GUI smoke test wireshark-qt, Xvfb, xdotool and xwd (x11-apps);
# the Lua 5.4 syntax test lua5.4; the streaming tests tcpdump (Debian packages). Installed
# when one is missing.
tshark:
	@{ command -v tshark && command -v wireshark && command -v Xvfb && command -v xwd && command -v xdotool \
	   && command -v lua5.4 && command -v tcpdump; } >/dev/null 2>&1 || { \
	  echo "installing tshark, wireshark-qt, xvfb, x11-apps, xdotool, lua5.4, tcpdump (Debian packages)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true; \
	  apt-get update -qq && apt-get install -y -qq tshark wireshark-qt xvfb x11-apps xdotool lua5.4 tcpdump >/dev/null; }

# Debian trixie's tshark (Wireshark 4.4, Lua 5.4) in a chroot (debootstrap, about 550 MB in
# /opt/trixie-ws; needs root), for tests/dissector/test_newer_wireshark.py:
#   make tshark-newer && NETDUMP_TSHARK_NEWER=$PWD/dissectors/tools/tshark-trixie.sh make test
.PHONY: tshark-newer
tshark-newer:
	sh dissectors/tools/tshark-trixie.sh build

test-deps: $(PY) tshark
	$(PIP) install -q -e '.[test]'

# pip install -e builds the compiled modules (Cython, setup.py) where a C compiler is: there
# the suite must find them built, so the compiled-vs-pure comparisons run, not skip.
test: test-deps
	NETDUMP_ANALYZER_EXPECT_COMPILED=$$(command -v cc >/dev/null 2>&1 && echo 1) $(PY) -m pytest -q

clean:
	rm -rf $(VENV) out build *.egg-info .pytest_cache .hypothesis
	find analyzer -name "*.so" -delete

# Fuzz the capture readers and the protocol core (+ recovery and file writer) with atheris for
# FUZZ_SECONDS in all, half each, starting from the seed corpus in fuzz/corpus. New inputs go
# to fuzz/work/, a crash or broken invariant to fuzz/findings/ and fails the target (after both
# harnesses ran). FUZZ_SKIP_KNOWN=1 lets problems already reported pass (see fuzz/README.md).
FUZZ_SECONDS ?= 600
FUZZ_FLAGS ?= -timeout=60 -rss_limit_mb=3072 -print_final_stats=1

fuzz: venv
	@$(PY) -c "import atheris" 2>/dev/null || $(PIP) install -q 'atheris>=3,<4'
	@test -d fuzz/corpus/capture -a -d fuzz/corpus/core || $(PY) fuzz/seed_corpus.py
	@mkdir -p fuzz/work/capture fuzz/work/core fuzz/findings
	@half=$$(( $(FUZZ_SECONDS) / 2 )); [ $$half -ge 1 ] || half=1; status=0; \
	echo "fuzz: capture readers, $$half s"; \
	$(PY) fuzz/fuzz_capture.py fuzz/work/capture fuzz/corpus/capture -max_total_time=$$half \
	  -artifact_prefix=fuzz/findings/capture- $(FUZZ_FLAGS) || status=1; \
	echo "fuzz: protocol core and recovery, $$half s"; \
	$(PY) fuzz/fuzz_core.py fuzz/work/core fuzz/corpus/core -max_total_time=$$half \
	  -artifact_prefix=fuzz/findings/core- $(FUZZ_FLAGS) || status=1; \
	if [ $$status -ne 0 ]; then echo "fuzz: FINDINGS in fuzz/findings/:"; ls fuzz/findings; fi; \
	exit $$status

# Throughput, memory and write-size benchmark (issue #5): captures are generated once into
# benchmarks/.cache/ (about 9 GB for the full set). BENCH_ARGS=--quick: 256 MiB dumps only.
.PHONY: bench
BENCH_ARGS ?=
bench: venv
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# The manual page, from the commands' own help (a test checks it is up to date).
.PHONY: man
man: venv
	$(PY) -m analyzer.manpage > docs/netdump-analyzer.1
