# One entry point for people and CI. Every target that needs the environment
# depends on `setup`, which is idempotent: a stamp file records each finished
# step, so a second `make test` starts the tests at once.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
PIP := $(VPY) -m pip
PIPC := $(PIP) install -c requirements/constraints.txt
STAMP := $(VENV)/.stamps
# CPU build on disk here; GPU users install into their own env (README).
TORCH_VERSION ?= 2.13.0
TORCH_SPEC ?= torch==$(TORCH_VERSION)
MMCV_SPEC ?= mmcv==2.1.0
MMDET_SPEC ?= mmdet==3.3.0
MMENGINE_SPEC ?= mmengine==0.10.7
DEMO_DIR ?= work_dirs/demo

.PHONY: setup demo test bench accuracy model-zoo metafiles clean-demo

setup: $(STAMP)/package

$(STAMP)/venv: requirements/constraints.txt
	$(PY) -m venv $(VENV)
	$(PIPC) -q --upgrade pip setuptools wheel
	mkdir -p $(STAMP) && touch $@

$(STAMP)/torch: $(STAMP)/venv
	$(PIP) install -q "$(TORCH_SPEC)" "numpy<2.4"
	# torch's metadata asks setuptools>=77, but mmcv's build and mmengine's
	# mmdet:: config lookup need pkg_resources (setuptools<75); torch only
	# uses setuptools for cpp_extension, which we never call.
	$(PIPC) -q "setuptools<75"
	touch $@

# mmcv 2.1.0 is on PyPI only as source; build its C++ ops against the torch
# above (no build isolation, or pip would fetch a second torch to build with).
$(STAMP)/mmcv: $(STAMP)/torch
	$(PIPC) -q "$(MMENGINE_SPEC)" opencv-python-headless
	MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) $(PIPC) --no-build-isolation "$(MMCV_SPEC)"
	touch $@

$(STAMP)/mmdet: $(STAMP)/mmcv
	$(PIPC) -q "$(MMDET_SPEC)"
	touch $@

# --no-deps: every dependency is installed above. Letting pip resolve torch
# again would trade 2.13 for an older release that accepts setuptools<75,
# and the mmcv ops built against 2.13 would no longer load.
# model-index: the library that reads and checks metafiles (tests, and
# tools/sync_metafiles.py); pure Python, with click, Markdown and ordered-set.
$(STAMP)/package: $(STAMP)/mmdet setup.py
	$(PIPC) -q scikit-learn pytest model-index==0.1.11
	$(PIPC) -q --no-build-isolation --no-deps -e .
	$(VPY) -c "import torch, mmcv.ops, mmdet, mmkd_plugins; \
	  assert torch.__version__.startswith('$(TORCH_VERSION)'), torch.__version__; \
	  print('torch', torch.__version__, '| mmcv ops load | mmdet', mmdet.__version__)"
	touch $@

demo: setup
	$(VPY) tools/demo.py --work-dir $(DEMO_DIR)

test: setup
	$(VPY) -m pytest -q tests

bench: setup
	$(VPY) tools/benchmark_speed.py

# The accuracy benchmark (docs/benchmarks.md): glyph data, backbone
# pretraining, teacher, every row over 3 seeds; stored runs are reused, so a
# second call only rewrites the tables. SUITE=group for the group-robust rows.
SUITE ?= glyphs
accuracy: setup
	$(VPY) tools/benchmark_accuracy.py --suite $(SUITE)

# A model card for every student exported with --publish (make demo exports
# one) -> docs/model_zoo.md: teacher vs student parameters, FLOPs, latency, mAP.
model-zoo: setup
	$(VPY) tools/model_card.py $(DEMO_DIR)/export --train-command "make demo"

# The measured accuracy table (docs/accuracy.json) -> the metafiles' results.
metafiles: setup
	$(VPY) tools/sync_metafiles.py
