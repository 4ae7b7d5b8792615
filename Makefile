# perception: all set-up happens in tools/setup_env.sh (idempotent: seconds on a ready machine).
VENV ?= $(or $(PERCEPTION_VENV),$(HOME)/.venvs/perception)
PY := $(VENV)/bin/python

.PHONY: env test demo bench check-cuda

env:
	bash tools/setup_env.sh

test: env
	$(PY) -m pytest -q

demo: env
	@echo "The main job (MonoDETR on the synthetic KITTI world) arrives with the MonoDETR issue."
	@exit 1

bench: env
	$(PY) benchmarks/ops/msda.py

check-cuda: env
	$(PY) tools/check_cuda_compile.py
