# perception: all set-up happens in tools/setup_env.sh (idempotent: seconds on a ready machine).
VENV ?= $(or $(PERCEPTION_VENV),$(HOME)/.venvs/perception)
PY := $(VENV)/bin/python

.PHONY: env test test-fast demo bench check-cuda

env:
	bash tools/setup_env.sh

test: env
	$(PY) -m pytest -q

# the quick loop: all but the tests marked slow (training subprocesses, long overfits)
test-fast: env
	$(PY) -m pytest -q -m "not slow"

# the main job: MonoDETR trained from scratch on the synthetic KITTI world, end to end (about 14 min on 2 cores)
demo: env
	$(PY) tools/demo/main_job.py

bench: env
	$(PY) benchmarks/ops/msda.py

check-cuda: env
	$(PY) tools/check_cuda_compile.py
