#!/usr/bin/env bash
# Federated training as separate processes on loopback: one Flower server and two studio clients, each
# started with its own data folder, then the global model is used by `framecolor run --model`.
# Bounded: every process runs under `timeout`, and the server stops the clients after the last round.
#
#   training/run_federated_loopback.sh [WORKDIR] [ROUNDS] [LOCAL_STEPS]
#
# Data: two folders of synthetic cartoon frames (training/synthetic.py), one per studio, written here.
set -euo pipefail

WORK=${1:-$(mktemp -d -t framecolor-fedavg-XXXXXX)}
ROUNDS=${2:-3}
LOCAL_STEPS=${3:-5}
LIMIT=${FEDAVG_TIME_LIMIT:-300}   # seconds any one process may run
PY=${PYTHON:-python}
mkdir -p "$WORK"
cd "$(dirname "$0")/.."          # repository root, so `python -m training...` resolves

PORT=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ADDRESS="127.0.0.1:$PORT"

echo "== data: $WORK/studio-a, $WORK/studio-b (12 frames each, 64x64)"
$PY - "$WORK" <<'PYEOF'
import sys
from pathlib import Path
import cv2
from training.synthetic import make_frame
work = Path(sys.argv[1])
for studio, first in (("studio-a", 0), ("studio-b", 1000)):
    folder = work / studio
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(12):
        rgb = make_frame(first + i, (64, 64))
        cv2.imwrite(str(folder / f"frame_{i:04d}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
PYEOF

MODEL="--base-channels 8 --depth 3 --short-side 64"
CLIENT="--batch 4 --crop 32 --short-side 64 --d-channels 8 --threads 1 --max-wait 60"

echo "== server on $ADDRESS: 2 clients, $ROUNDS rounds x $LOCAL_STEPS local steps -> $WORK/global"
START=$SECONDS
timeout "$LIMIT" $PY -m training.federated_deploy server --address "$ADDRESS" --clients 2 --rounds "$ROUNDS" \
    --local-steps "$LOCAL_STEPS" --out "$WORK/global" $MODEL --connect-timeout 120 > "$WORK/server.log" 2>&1 &
SERVER=$!
timeout "$LIMIT" $PY -m training.federated_deploy client --server "$ADDRESS" --name studio-a \
    --data "$WORK/studio-a" --out "$WORK/log-a" --seed 1 $CLIENT > "$WORK/client-a.log" 2>&1 &
CLIENT_A=$!
timeout "$LIMIT" $PY -m training.federated_deploy client --server "$ADDRESS" --name studio-b \
    --data "$WORK/studio-b" --out "$WORK/log-b" --seed 2 $CLIENT > "$WORK/client-b.log" 2>&1 &
CLIENT_B=$!

status=0
wait $SERVER || status=$?
echo "server exit $status"; tail -n 5 "$WORK/server.log"
for pair in "studio-a:$CLIENT_A:$WORK/client-a.log" "studio-b:$CLIENT_B:$WORK/client-b.log"; do
    IFS=: read -r name pid logfile <<< "$pair"
    rc=0; wait "$pid" || rc=$?
    echo "client $name exit $rc"; tail -n 3 "$logfile"
    [ "$rc" -eq 0 ] || status=$rc
done
[ "$status" -eq 0 ] || { echo "FAILED (exit $status); logs in $WORK"; exit "$status"; }
echo "== federated run: $((SECONDS - START)) s wall (server start to last client exit)"
ls "$WORK/global"

echo "== framecolor run --model $WORK/global/model.safetensors on studio-a's frames"
timeout "$LIMIT" framecolor -q run "$WORK/studio-a" --model "$WORK/global/model.safetensors" -o "$WORK/colored"
ls "$WORK/colored" | head -n 3
echo "OK: $WORK"
