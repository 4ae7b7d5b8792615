#!/usr/bin/env bash
# Distributed testing with torchrun: bash tools/dist_test.sh CONFIG CHECKPOINT GPUS [test.py options]
# (environment variables: see dist_run.sh)
exec bash "$(dirname "$0")/dist_run.sh" "$3" "$(dirname "$0")/test.py" "$1" "$2" "${@:4}"
