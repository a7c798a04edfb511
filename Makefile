# Two entry points, each doing all set-up on a fresh machine:
#   make demo   -- the main job (Signal Propagation Plots of ResNetV2-600: bn, none, nf)
#   make test   -- the whole test suite
#   make reproduce -- every paper claim at --quick size, summary in docs/reproduce-results.md
#   make figures   -- the README's picture (the demo's plot, shrunk) and every guide's
#                     pictures (docs/figures/make_*.py), into docs/figures/
# torch is installed first so that nothing else can pull a different build:
#   make demo TORCH='torch==2.13.0'   (default; any pip requirement or wheel path works)
PYTHON ?= python3
TORCH  ?= torch==2.13.0
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= out/demo
# The stamp names the torch requirement, so a different TORCH re-runs the install.
STAMP  := $(VENV)/.installed-$(shell printf '%s' '$(TORCH)' | tr -c 'A-Za-z0-9.=_-' '_')

.PHONY: demo test install lint bench docs clean reproduce figures

install: $(STAMP)

$(STAMP): pyproject.toml setup.py Makefile $(wildcard src/signalprop/measure/forward/*.c) \
		$(wildcard src/signalprop/nn/quantized/*.c) $(wildcard src/signalprop/optim/*.c) \
		$(wildcard src/signalprop/nn/hypercomplex/*.c) $(wildcard src/signalprop/*.h)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet '$(TORCH)'
	$(BIN)/python -m pip install --quiet -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/signalprop spp resnetv2_600 --norm bn,none,nf \
		--input-shape 3,224,224 --batch-size 8 --seed 0 --predict --out $(OUT)

# The README's picture: the demo's SPP plot, 1400 px wide, as a 128-colour palette PNG
# (fast octree, method=2) of about 70 KB instead of 300 KB.
FIGURE ?= docs/figures/spp_resnetv2_600.png
figures: demo
	mkdir -p $(dir $(FIGURE))
	$(BIN)/python -c "import sys; from PIL import Image; \
	im = Image.open(sys.argv[1]).convert('RGB'); w = 1400; \
	im = im.resize((w, round(im.height * w / im.width)), Image.LANCZOS); \
	im.quantize(colors=128, method=2).save(sys.argv[2], optimize=True)" \
		$(OUT)/spp.png $(FIGURE)
	@ls -l $(FIGURE)
	# the guides' pictures: one script per guide, each writes into docs/figures/
	for script in docs/figures/make_*.py; do \
		echo "$$script"; OMP_NUM_THREADS=1 $(BIN)/python $$script || exit 1; done

# Every claim in --quick mode (minutes each), then the summary table the README links.
reproduce: $(STAMP)
	$(BIN)/signalprop reproduce --all --quick --workers 2 --out out/reproduce --no-progress; \
	status=$$?; \
	$(BIN)/signalprop reproduce --summary out/reproduce && \
	cp out/reproduce/SUMMARY.md docs/reproduce-results.md && exit $$status

test: $(STAMP)
	$(BIN)/python -m pytest

docs: $(STAMP)
	$(BIN)/python -m mkdocs build --strict   # offline; writes out/site/index.html

lint: $(STAMP)
	$(BIN)/ruff check .

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_spp.py

clean:
	rm -rf $(VENV) out build dist src/*.egg-info
