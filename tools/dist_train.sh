#!/usr/bin/env bash
# Distributed training with torchrun: bash tools/dist_train.sh CONFIG GPUS [train.py options]
# (environment variables: see dist_run.sh)
exec bash "$(dirname "$0")/dist_run.sh" "$2" "$(dirname "$0")/train.py" "$1" "${@:3}"
