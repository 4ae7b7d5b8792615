#!/usr/bin/env bash
# torchrun launcher behind dist_train.sh and dist_test.sh: bash tools/dist_run.sh NPROC SCRIPT [script args]
# Multi-node: set NNODES, NODE_RANK, MASTER_ADDR (and PORT) on every node; PYTHON picks the interpreter.
# Every expansion is quoted: paths with spaces reach the script as one argument.
NPROC="$1"
SCRIPT="$2"
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
PORT="${PORT:-29500}"
MASTER_ADDR="${MASTER_ADDR:-"127.0.0.1"}"

PYTHONPATH="$(dirname "$0")/..${PYTHONPATH:+:$PYTHONPATH}" \
exec "${PYTHON:-python}" -m torch.distributed.run \
    --nnodes="$NNODES" \
    --node_rank="$NODE_RANK" \
    --master_addr="$MASTER_ADDR" \
    --nproc_per_node="$NPROC" \
    --master_port="$PORT" \
    "$SCRIPT" \
    --launcher pytorch "${@:3}"
